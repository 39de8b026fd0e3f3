// The auth probe: can the configured account log in over SMTP?
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "probes/probe_kind.hpp"
#include "protocols/smtp_dialog.hpp"

namespace mailcanary {

const ProbeKind& auth_probe();
boost::asio::awaitable<Outcome> run_auth_probe(ProbeRun run);

// The configured mechanism; none for "automatic" (the strongest the server offers).
std::optional<sasl::Mechanism> sasl_mechanism(AuthMechanism mechanism);

// The AUTH part of a session with the run's target (it has [targets.auth]): the secret of its
// credential source; a failed outcome (oauth_token) when no token can be had.
boost::asio::awaitable<std::variant<smtp::AuthRequest, Outcome>> make_auth_request(
    const ProbeRun& run);

// The SMTP server a run of the target logs in to: its host, when it has [targets.auth].
std::vector<std::string> smtp_login_hosts(const TargetConfig& target);

}  // namespace mailcanary
