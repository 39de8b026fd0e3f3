// How `mailcanary check` shows its runs: for people, a waterfall of each run's phases (a bar for
// when and how long, and the reply that ended each), the certificate and the outcome; for
// scripts, the same as one JSON document. With `verbose`, each run's transcript too.
#pragma once

#include <span>
#include <string>

#include "agent/probe_once.hpp"
#include "probes/target_config.hpp"

namespace mailcanary {

std::string render_check_text(const TargetConfig& target, std::span<const OneRun> runs,
                              bool verbose);
std::string render_check_json(const TargetConfig& target, std::span<const OneRun> runs,
                              bool verbose);

// The first line of the last reply the server sent between `from` and `to` (a multi-line SMTP
// reply is shown by its first line, which names the server); else the last note the agent
// made then ("TLS established: ..."); empty when neither.
std::string reply_between(const OneRun& run, std::chrono::steady_clock::time_point from,
                          std::chrono::steady_clock::time_point to);

}  // namespace mailcanary
