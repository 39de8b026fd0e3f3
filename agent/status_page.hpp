// What people read when something failed: the status page, one pair's transcripts as text, and
// the one-line summary of an outcome. The page's data comes from the JSON API (status_api.hpp).
#pragma once

#include <string>
#include <string_view>

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

// GET /: status_page.html, compiled in. It draws itself from /api/v1/status and refreshes.
std::string_view status_page_html();
http::Response serve_status_page();
// GET /results?target=&probe=: the last run's transcript, and the last failure's if it differs.
http::Response render_results(const ResultStore& results, const http::Request& request);

}  // namespace mailcanary
