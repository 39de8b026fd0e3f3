#pragma once

#include "probes/probe.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_accept_probe(ProbeRun run);

}  // namespace mailcanary
