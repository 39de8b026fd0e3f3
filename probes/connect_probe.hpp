// The connect probe: is the server up and speaking SMTP (and TLS) properly?
#pragma once

#include "probes/probe_kind.hpp"

namespace mailcanary {

const ProbeKind& connect_probe();
boost::asio::awaitable<Outcome> run_connect_probe(ProbeRun run);

}  // namespace mailcanary
