// What each fuzz target does with one input: parse or converse, and check the properties that
// must hold for any bytes (a violation aborts, which libFuzzer reports as a crash). The fuzzers
// (fuzz_main.cpp) and the unit suite's replay of tests/fuzz/ (fuzz_replay_test.cpp) share them.
#pragma once

#include <span>
#include <string_view>

namespace mailcanary::fuzz {

struct Target {
    std::string_view name;  // also the folder of its seeds, tests/fuzz/<name>/
    void (*run)(std::string_view input);
};

void smtp_reply(std::string_view input);
void smtp_dialog(std::string_view input);
void imap_response(std::string_view input);
void imap_dialog(std::string_view input);
void auth_results(std::string_view input);
void mail_headers(std::string_view input);
void config(std::string_view input);
void http_request(std::string_view input);

std::span<const Target> targets();

}  // namespace mailcanary::fuzz
