#pragma once

#include "probes/probe.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_auth_probe(ProbeRun run);

}  // namespace mailcanary
