#pragma once

#include "probes/mailbox_tracker.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_roundtrip_probe(ProbeRun run);

// How many runs of a roundtrip target may wait for their messages at once: runs overlap when
// the interval is shorter than delivery takes. Bounds the set of messages in flight.
std::size_t roundtrip_runs_in_flight(const TargetConfig& target);

// The mailbox a roundtrip target delivers to, as its tracker needs it.
MailboxSettings mailbox_settings_for(const CompiledTarget& target);

}  // namespace mailcanary
