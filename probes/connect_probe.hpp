#pragma once

#include "probes/probe.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_connect_probe(ProbeRun run);

}  // namespace mailcanary
