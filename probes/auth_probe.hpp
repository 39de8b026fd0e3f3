#pragma once

#include <variant>

#include "probes/probe.hpp"
#include "protocols/smtp_dialog.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_auth_probe(ProbeRun run);

// The configured mechanism; none for "automatic" (the strongest the server offers).
std::optional<sasl::Mechanism> sasl_mechanism(AuthMechanism mechanism);

// The AUTH part of a session with the run's target (it has [targets.auth]): the password read
// at load, or an OAuth2 access token (from token_file, or the refresh-token flow); a failed
// outcome (oauth_token) when no token can be had.
boost::asio::awaitable<std::variant<smtp::AuthRequest, Outcome>> make_auth_request(
    const ProbeRun& run);

}  // namespace mailcanary
