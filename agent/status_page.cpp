#include "agent/status_page.hpp"

#include <algorithm>

namespace mailcanary {
namespace {

std::string describe_run(const RunResult& result) {
    return "finished " + utc_timestamp(result.finished) + " after " +
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

http::Response serve_status_page() {
    auto response = http::plain_text(200, std::string(status_page_html()));
    response.content_type = "text/html; charset=utf-8";
    // Nothing but this page and the agent's own API: no other origin is ever asked (the page
    // works offline and leaks nothing), and no other site may frame it.
    response.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'");
    return response;
}

http::Response render_results(const ResultStore& results, const http::Request& request) {
    const auto target = request.query.find("target");
    const auto probe = request.query.find("probe");
    if (target == request.query.end() || probe == request.query.end()) {
        return http::plain_text(400, "usage: /results?target=NAME&probe=PROBE\n");
    }
    // The target's instances (NAME{ip_family="v4"}, ...), each after the other; other
    // parameters are instance labels that pick some (ip_family=v6).
    const auto has_labels = [&request](std::string_view instance) {
        return std::all_of(request.query.begin(), request.query.end(), [&](const auto& parameter) {
            const auto& [name, value] = parameter;
            return name == "target" || name == "probe" ||
                   instance.find(name + "=\"" + value + "\"") != std::string_view::npos;
        });
    };
    std::string body;
    for (const auto& [key, found] : results.all()) {
        const auto& [instance, probe_name] = key;
        const bool of_target =
            instance == target->second || (instance.starts_with(target->second + "{") &&
                                           instance.size() > target->second.size() + 1);
        if (!of_target || !has_labels(instance) || probe_name != probe->second || !found.last)
            continue;
        body += (body.empty() ? "" : "\n") + std::string("target ") + instance + ", probe " +
                probe_name + "\n\nLast run, " + describe_run(*found.last);
        if (found.last_failure && found.last->outcome.success()) {
            body += "\nLast failure, " + describe_run(*found.last_failure);
        }
    }
    if (body.empty()) {
        return http::plain_text(404, "no result yet for target \"" + target->second +
                                         "\" probe \"" + probe->second + "\"\n");
    }
    return http::plain_text(200, std::move(body));
}

}  // namespace mailcanary
