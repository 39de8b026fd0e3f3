// Helpers for the fuzz entries: a property check that aborts with a message, and the split of an
// input into what a server sends after each of the client's steps.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/sasl.hpp"

namespace mailcanary::fuzz {

// Aborts (a crash for libFuzzer, a failed test for the replay) when a property does not hold.
inline void require(bool holds, const char* property) {
    if (holds) return;
    std::fprintf(stderr, "fuzz property violated: %s\n", property);
    std::abort();
}

// The byte that separates what the server sends at each read in the dialog targets' inputs.
inline constexpr char kChunkSeparator = '\xff';

inline std::vector<std::string_view> chunks(std::string_view input) {
    std::vector<std::string_view> out;
    while (true) {
        const auto separator = input.find(kChunkSeparator);
        out.push_back(input.substr(0, separator));
        if (separator == std::string_view::npos) return out;
        input.remove_prefix(separator + 1);
    }
}

// A dialog that needs more steps than this for a few kilobytes of input is looping.
inline constexpr int kMaxSteps = 100'000;

// The login the dialog targets use, and whether what the client sent, as the transcript shows
// it, carries the secret in a form a mechanism sends it: as is (LOGIN command), base64 alone
// (AUTH LOGIN) or in PLAIN's response. (What the server says is shown as said: a server that
// echoes the secret is not the client's leak.)
inline constexpr std::string_view kUsername = "probe@example.test";
inline constexpr std::string_view kSecret = "Fuzz-s3cret!";

inline bool reveals_secret(const Transcript& transcript) {
    const std::string plain =
        std::string(1, '\0') + std::string(kUsername) + '\0' + std::string(kSecret);
    const std::string forms[] = {std::string(kSecret), sasl::base64_encode(kSecret),
                                 sasl::base64_encode(plain)};
    for (const auto& entry : transcript.entries()) {
        if (entry.direction != Transcript::Direction::client) continue;
        for (const std::string& form : forms) {
            if (entry.text.find(form) != std::string::npos) return true;
        }
    }
    return false;
}

}  // namespace mailcanary::fuzz
