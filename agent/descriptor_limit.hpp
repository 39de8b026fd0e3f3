// The process's limit on open file descriptors, and the cap on runs in flight that fits in it.
#pragma once

#include <cstdint>
#include <string>

namespace mailcanary {

// Raises the soft limit on open descriptors to the hard one: every run in flight holds a socket.
// Returns the soft limit in force after; `problem` says why raising failed, if it did.
std::uint64_t raise_descriptor_limit(std::string& problem);

// The soft limit in force.
std::uint64_t descriptor_limit();

// What a limit of `descriptors` leaves for runs, one each (a run holds its socket): what no cap
// covers is set aside first, the agent's own files and sockets and the HTTP server's
// connections, at most half of the limit.
std::uint64_t descriptors_for_runs(std::uint64_t descriptors);

// The default of [agent] max_concurrent_probes (the reasoning is in docs/configuration.md, "How
// many runs at once"): half of what is left for runs. The other half stays free for what grows
// outside the cap (the mailbox watchers' IMAP sessions, name lookups) and as a margin: running
// out turns into runs failing with errors that look like the servers' and a /metrics that cannot
// be scraped, while a full cap only makes runs wait.
unsigned default_max_concurrent_probes(std::uint64_t descriptors);

}  // namespace mailcanary
