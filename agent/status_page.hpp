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

// GET /: every target and probe with its last result and last failure.
std::string render_status_page(const Config& config, const ResultStore& results);
// GET /results?target=&probe=: the last run's transcript, and the last failure's if it differs.
http::Response render_results(const ResultStore& results, const http::Request& request);

}  // namespace mailcanary
