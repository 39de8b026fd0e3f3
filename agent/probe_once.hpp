// One-shot runs: each probe of one target once, with what happened. `--probe=TARGET` prints them
// as transcripts; `mailcanary check` as a waterfall (check_command.hpp).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

class ProbeKind;

struct OneRun {
    const ProbeKind* probe;
    Outcome outcome;
    RunMetrics metrics;
    Transcript transcript;
    std::chrono::steady_clock::time_point started;  // also the transcript's start
    std::chrono::nanoseconds elapsed{};
};

// Runs each of the target's probes once, in its order, on `io` (the loop its resolver was made
// on), and waits for them. The caller stops the blocking work (stop_blocking_work) after the
// last call, before `io` goes: a worker may still post to it. Takes
// the only reference to `target`: what the runs attach to it (its server's backoff gauge, its
// mailbox) lives in series of this call, and must go before they do.
std::vector<OneRun> run_probes_once(boost::asio::io_context& io,
                                    std::shared_ptr<CompiledTarget> target);

// Exit code: 0 when every probe succeeded, 1 when one failed, 2 when there is no such target.
int probe_once(boost::asio::io_context& io, const Config& config,
               std::vector<std::shared_ptr<CompiledTarget>> targets,
               const std::string& target_name);

}  // namespace mailcanary
