// Every seed of the fuzzers (tests/fuzz/<target>/) and every input a fuzzer once failed on
// (tests/fuzz/regressions/<target>/) through the target's entry, with its properties: the fuzz
// findings stay fixed without clang or libFuzzer. A broken property aborts the test.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "fuzz/entries.hpp"

namespace mailcanary::fuzz {
namespace {

namespace fs = std::filesystem;

const fs::path kFuzzDir = fs::path(MAILCANARY_SOURCE_DIR) / "tests" / "fuzz";

std::string contents(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

// The files directly in `dir`, or none when it is not there.
std::vector<fs::path> inputs_in(const fs::path& dir) {
    std::vector<fs::path> files;
    if (!fs::is_directory(dir)) return files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

class FuzzReplay : public testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedsAndRegressionsKeepTheProperties) {
    const Target& target = GetParam();
    const auto seeds = inputs_in(kFuzzDir / target.name);
    // A target without seeds would make this test pass having checked nothing.
    ASSERT_FALSE(seeds.empty()) << "no seeds in " << (kFuzzDir / target.name);
    for (const auto& file : seeds) {
        SCOPED_TRACE(file.string());
        target.run(contents(file));
    }
    for (const auto& file : inputs_in(kFuzzDir / "regressions" / target.name)) {
        SCOPED_TRACE(file.string());
        target.run(contents(file));
    }
}

// The lambda's parameter is not called `info`: the macro has one of that name.
INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, testing::ValuesIn(targets().begin(), targets().end()),
                         [](const testing::TestParamInfo<Target>& test) {
                             return std::string(test.param.name);
                         });

}  // namespace

// Names the target in test lists and ctest, rather than its bytes.
void PrintTo(const Target& target, std::ostream* out) { *out << target.name; }

}  // namespace mailcanary::fuzz
