// The token a probe message carries (X-Mailcanary-Token), by which the agent recognises its own
// messages in a mailbox and never touches anyone else's.
#pragma once

#include <string>
#include <string_view>

namespace mailcanary {

// "mc1.<run id>.<mac>": the run id is random, the mac an HMAC-SHA256 of it under the
// installation's secret, so a token cannot be guessed or forged without the secret.
std::string make_token(std::string_view secret);
bool verify_token(std::string_view token, std::string_view secret);
// The run id of a token (the whole text when it is not one): names the run in a Message-ID
// without revealing the token.
std::string_view token_run_id(std::string_view token);

}  // namespace mailcanary
