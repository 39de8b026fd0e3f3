#pragma once

#include <variant>

#include "probes/probe.hpp"
#include "probes/smtp_dialog.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_auth_probe(ProbeRun run);

// The AUTH part of a session with this target (it has [targets.auth]): the password read at
// load, or the OAuth2 token read now; a failed outcome when the token cannot be read.
std::variant<smtp::AuthRequest, Outcome> make_auth_request(const CompiledTarget& target,
                                                           Transcript& transcript);

}  // namespace mailcanary
