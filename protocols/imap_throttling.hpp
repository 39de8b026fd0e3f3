// Whether an IMAP server's NO, BAD or BYE says it throttles this client: too many sessions, too
// many commands or too many bytes for the account. That is no outage and no refused login: the
// server works and would let the client in later. The codes and texts are the RFC's and the
// providers' own; the sources are cited in tests/unit/imap_throttling_test.cpp.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace mailcanary::imap {

struct Throttling {
    // How long the server asked the client to wait (Microsoft says it), if it did.
    std::optional<std::chrono::milliseconds> backoff_hint;
};

// A response's code (without brackets, e.g. "OVERQUOTA") and text, answering `command` (its
// first word or two, e.g. "UID COPY"; empty for an untagged BYE): throttling or not.
std::optional<Throttling> throttling(std::string_view code, std::string_view text,
                                     std::string_view command);

// Microsoft's "Suggested Backoff Time: 299910 milliseconds", bounded: nothing when the text
// names no such time.
std::optional<std::chrono::milliseconds> suggested_backoff(std::string_view text);

}  // namespace mailcanary::imap
