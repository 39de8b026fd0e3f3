#include "agent/status_page.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace mailcanary {
namespace {

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string url_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 15];
        }
    }
    return out;
}

std::string utc_time(std::chrono::system_clock::time_point when) {
    const auto time = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%SZ", &utc);
    return text;
}

std::string describe_run(const RunResult& result) {
    return "finished " + utc_time(result.finished) + " after " +
           format_milliseconds(result.duration) + ": " + outcome_text(result.outcome) + "\n" +
           result.transcript.to_text();
}

}  // namespace

std::string outcome_text(const Outcome& outcome) {
    if (!outcome.success() && !outcome.failure) return "cancelled";
    std::string text = outcome.success()
                           ? "success"
                           : "failed: " + std::string(to_string(*outcome.failure)) +
                                 (outcome.detail.empty() ? "" : " (" + outcome.detail + ")");
    if (!outcome.queue_id.empty()) text += ", queued as " + outcome.queue_id;
    return text;
}

std::string render_status_page(const Config& config, const ResultStore& results,
                               const RunSlots& slots) {
    std::string page =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mailcanary</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left}"
        ".ok{color:#186a3b}.failed{color:#b03a2e;font-weight:bold}</style></head><body>"
        "<h1>mailcanary</h1><p>Configuration: " +
        html_escape(config.source_path) + " &middot; " + std::to_string(config.targets.size()) +
        " targets &middot; <a href=\"/metrics\">metrics</a></p><p>Runs in flight: " +
        std::to_string(slots.in_flight) + " of " + std::to_string(slots.limit) +
        " (max_concurrent_probes) &middot; waiting for a slot: " + std::to_string(slots.queued) +
        "</p><table><tr><th>target</th><th>probe</th><th>host</th><th>interval</th>"
        "<th>last run</th><th>result</th><th>duration</th><th>last failure</th></tr>";
    for (const auto& target : config.targets) {
        for (const auto& probe : target.probes) {
            const auto* found = results.find({target.name, probe});
            const std::string link =
                "/results?target=" + url_encode(target.name) + "&amp;probe=" + url_encode(probe);
            std::string interval = format_duration(target.interval);
            if (found != nullptr && found->backoff > std::chrono::nanoseconds::zero()) {
                interval += ", backing off: next run " + format_duration(found->backoff) + " later";
            }
            page += "<tr><td>" + html_escape(target.name) + "</td><td>" + html_escape(probe) +
                    "</td><td>" + html_escape(target.host) + ":" + std::to_string(target.port) +
                    "</td><td>" + interval + "</td>";
            if (found == nullptr || !found->last) {
                page += "<td colspan=\"4\">not run yet</td></tr>";
                continue;
            }
            const auto& last = *found->last;
            const bool ok = last.outcome.success();
            page += "<td>" + utc_time(last.finished) + "</td><td class=\"" +
                    (ok ? "ok" : "failed") + "\"><a href=\"" + link + "\">" +
                    html_escape(outcome_text(last.outcome)) + "</a></td><td>" +
                    format_milliseconds(last.duration) + "</td><td>" +
                    (found->last_failure
                         ? utc_time(found->last_failure->finished) + " " +
                               html_escape(to_string(*found->last_failure->outcome.failure))
                         : "none") +
                    "</td></tr>";
        }
    }
    page += "</table></body></html>\n";
    return page;
}

http::Response render_results(const ResultStore& results, const http::Request& request) {
    const auto target = request.query.find("target");
    const auto probe = request.query.find("probe");
    if (target == request.query.end() || probe == request.query.end()) {
        return http::plain_text(400, "usage: /results?target=NAME&probe=PROBE\n");
    }
    const auto* found = results.find({target->second, probe->second});
    if (found == nullptr || !found->last) {
        return http::plain_text(404, "no result yet for target \"" + target->second +
                                         "\" probe \"" + probe->second + "\"\n");
    }
    std::string body = "target " + target->second + ", probe " + probe->second + "\n\nLast run, " +
                       describe_run(*found->last);
    if (found->last_failure && found->last->outcome.success()) {
        body += "\nLast failure, " + describe_run(*found->last_failure);
    }
    return http::plain_text(200, std::move(body));
}

}  // namespace mailcanary
