// The token a probe message carries (X-Mailcanary-Token), by which the agent recognises its own
// messages in a mailbox and never touches anyone else's, and by which any agent holding the
// secret tells a message still awaited from one left behind.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

// "mc2.<deadline>.<run id>.<mac>": the deadline is when the sender stops waiting for its
// message (Unix seconds, rounded up), the run id random, the mac an HMAC-SHA256 of
// "mc2.<deadline>.<run id>" under the installation's secret, so a token (and its deadline)
// cannot be guessed or forged without the secret.
std::string make_token(std::string_view secret, std::chrono::system_clock::time_point deadline);

struct VerifiedToken {
    // Until when its sender may wait for the message; none for an "mc1.<run id>.<mac>" token
    // of an earlier version, which does not say.
    std::optional<std::chrono::system_clock::time_point> deadline;
};
// The token's facts, when it is a token of either version signed with `secret`.
std::optional<VerifiedToken> verify_token(std::string_view token, std::string_view secret);
// The run id of a token (the whole text when it is not one): names the run in a Message-ID
// without revealing the token.
std::string_view token_run_id(std::string_view token);

}  // namespace mailcanary
