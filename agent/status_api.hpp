// The status page's data as JSON, for the page's own refresh and for scripts:
//   GET /api/v1/status                       every target and probe: state, reason, since when,
//                                            the last run (phases, last reply, queue id,
//                                            delivery) and the recent runs
//   GET /api/v1/results?target=T[&probe=P]   the last run and last failure of T's probes (or of
//                                            P only), with their redacted transcripts
// docs/status-page.md describes the documents.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "agent/config.hpp"
#include "agent/http_server.hpp"
#include "agent/results.hpp"
#include "agent/status_page.hpp"

namespace mailcanary {

bool is_status_api_path(std::string_view path);

struct StatusView {
    const Config& config;
    const ResultStore& results;
    RunSlots slots;
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// A GET of a path is_status_api_path accepts: 200 with JSON, or 400 (a bad parameter) or 404
// (an unknown target or probe) with the reason in a JSON error.
http::Response serve_status_api(const StatusView& view, const http::Request& request);

}  // namespace mailcanary
