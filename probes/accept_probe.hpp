// The accept probe: is mail accepted for delivery?
#pragma once

#include <string>

#include "probes/probe_kind.hpp"
#include "protocols/message.hpp"

namespace mailcanary {

const ProbeKind& accept_probe();
boost::asio::awaitable<Outcome> run_accept_probe(ProbeRun run);

// The accept probe's session, with a given token in the message, whose body says what becomes of
// it: the roundtrip probe sends its message exactly the same way.
boost::asio::awaitable<Outcome> submit_probe_message(ProbeRun run, std::string token,
                                                     AfterDelivery after_delivery);

}  // namespace mailcanary
