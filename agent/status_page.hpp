// What people read when something failed: the status page, one pair's transcripts, and the
// one-line summary of an outcome.
#pragma once

#include <chrono>
#include <string>

#include "agent/config.hpp"
#include "agent/http_server.hpp"
#include "agent/results.hpp"
#include "common/duration.hpp"

namespace mailcanary {

std::string outcome_text(const Outcome& outcome);  // "success" or "failed: reason (detail)"

// The runs in flight against the cap, and those waiting for a slot.
struct RunSlots {
    std::size_t in_flight = 0;
    std::size_t queued = 0;
    std::size_t limit = 0;
};

// GET /: the run slots, and every target and probe with its interval (and backoff), its last
// result and last failure.
std::string render_status_page(const Config& config, const ResultStore& results,
                               const RunSlots& slots);
// GET /results?target=&probe=: the last run's transcript, and the last failure's if it differs.
http::Response render_results(const ResultStore& results, const http::Request& request);

}  // namespace mailcanary
