// One libFuzzer target: MAILCANARY_FUZZ_TARGET names the entry (entries.hpp) it runs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    mailcanary::fuzz::MAILCANARY_FUZZ_TARGET(
        std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
