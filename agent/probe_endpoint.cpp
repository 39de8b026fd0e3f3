#include "agent/probe_endpoint.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "agent/exposition.hpp"
#include "agent/status_page.hpp"
#include "common/duration.hpp"
#include "probes/registry.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// What blackbox_exporter keeps of the scrape timeout for the answer to reach Prometheus.
constexpr auto kTimeoutOffset = 500ms;

constexpr std::string_view kScrapeTimeoutHeader = "x-prometheus-scrape-timeout-seconds";

bool is_name_character(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}

// A host as a resolver takes it: an address, or a name of letters, digits, '.', '-' and '_'.
bool valid_host(const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (!ec) return true;
    return !host.empty() && host.front() != '-' && host.front() != '.' &&
           std::all_of(host.begin(), host.end(), is_name_character);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value == 0 ||
        value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

// "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address; the problem otherwise.
std::optional<std::string> split_target(std::string_view target, ProbeRequest& request) {
    std::string_view host = target;
    std::optional<std::string_view> port;
    if (target.starts_with('[')) {
        const auto close = target.find(']');
        if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
        host = target.substr(1, close - 1);
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(std::string(host), ec);
        if (ec) return "\"" + std::string(host) + "\" in brackets is not an IPv6 address";
        const std::string_view rest = target.substr(close + 1);
        if (!rest.empty()) {
            if (!rest.starts_with(':')) return "expected \":port\" after ']'";
            port = rest.substr(1);
        }
    } else if (std::count(target.begin(), target.end(), ':') == 1) {
        const auto colon = target.find(':');
        host = target.substr(0, colon);
        port = target.substr(colon + 1);
    }
    request.host = std::string(host);
    if (!valid_host(request.host)) {
        return "\"" + std::string(target) + "\" is not a host name or an address";
    }
    if (port) {
        request.port = parse_port(*port);
        if (!request.port) return "invalid port \"" + std::string(*port) + "\"";
    }
    return std::nullopt;
}

// "TLSv1.3" (OpenSSL) as blackbox_exporter names it: "TLS 1.3".
std::string blackbox_tls_version(std::string_view openssl) {
    if (openssl.starts_with("TLSv")) return "TLS " + std::string(openssl.substr(4));
    return std::string(openssl);
}

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

void gauge(std::string& out, std::string_view name, std::string_view help, std::string_view labels,
           double value) {
    append_family_header(out, name, help, "gauge");
    append_sample(out, name, labels, value);
}

std::string labels_of(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
    std::string labels;
    for (const auto& [name, value] : pairs) append_label(labels, name, value);
    return labels;
}

http::Response bad_request(const std::string& reason) {
    return http::plain_text(400, reason + "\n");
}

// The transcript of each run and the metrics, for a person (&debug=true).
std::string debug_text(const ProbeRuns& runs, const std::string& metrics) {
    std::string text = "Transcript of the probe:\n";
    for (const auto& [probe, run] : runs.runs) {
        text += "--- " + std::string(probe) + ": " + outcome_text(run.result.outcome) + " in " +
                format_milliseconds(run.result.duration) + "\n" + run.result.transcript.to_text();
    }
    return text + "\nMetrics that would have been returned:\n" + metrics;
}

// Each probe of the module in order until one fails, then the answer.
asio::awaitable<http::Response> run_module(ProbeEndpoint::Runner run,
                                           std::shared_ptr<const CompiledTarget> target,
                                           ProbeEndpoint::Clock::time_point deadline, bool debug) {
    ProbeRuns runs;
    const auto started = ProbeEndpoint::Clock::now();
    for (const std::string& name : target->config.probes) {
        Scheduler::AskedRun asked = co_await run(target, *find_probe(name), deadline);
        if (asked.result.outcome.cancelled)
            co_return http::plain_text(503, "the agent is stopping\n");
        const bool succeeded = asked.result.outcome.success();
        runs.runs.push_back({name, std::move(asked)});
        if (!succeeded) break;
    }
    runs.duration = ProbeEndpoint::Clock::now() - started;
    std::string metrics = render_probe_metrics(runs);
    if (debug) co_return http::plain_text(200, debug_text(runs, metrics));
    http::Response answer = http::plain_text(200, std::move(metrics));
    answer.content_type = "text/plain; version=0.0.4; charset=utf-8";
    co_return answer;
}

}  // namespace

std::variant<ProbeRequest, std::string> parse_probe_request(const http::Request& request) {
    ProbeRequest parsed;
    const auto module = request.query.find("module");
    if (module == request.query.end() || module->second.empty())
        return std::string("module parameter is missing");
    parsed.module = module->second;
    const auto target = request.query.find("target");
    if (target == request.query.end() || target->second.empty())
        return std::string("target parameter is missing");
    if (auto problem = split_target(target->second, parsed)) return *problem;
    if (const auto debug = request.query.find("debug"); debug != request.query.end()) {
        if (debug->second != "true" && debug->second != "false")
            return "debug must be \"true\" or \"false\", not \"" + debug->second + "\"";
        parsed.debug = debug->second == "true";
    }
    if (const auto header = request.headers.find(std::string(kScrapeTimeoutHeader));
        header != request.headers.end()) {
        double value = 0;
        const std::string& text = header->second;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
            !std::isfinite(value) || value <= 0 || value > 86400) {
            return "X-Prometheus-Scrape-Timeout-Seconds must be a number of seconds, not \"" +
                   text + "\"";
        }
        parsed.scrape_timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(value));
    }
    return parsed;
}

std::chrono::nanoseconds probe_timeout(const ProbeRequest& request,
                                       std::chrono::nanoseconds module_timeout) {
    if (!request.scrape_timeout) return module_timeout;
    // A scrape timeout shorter than the offset keeps it all: a run cut at once tells nothing.
    const auto scrape = *request.scrape_timeout > kTimeoutOffset
                            ? *request.scrape_timeout - kTimeoutOffset
                            : *request.scrape_timeout;
    return std::min(scrape, module_timeout);
}

std::string render_probe_metrics(const ProbeRuns& runs) {
    bool success = !runs.runs.empty();
    std::optional<unsigned> ip_version;
    std::optional<std::chrono::system_clock::time_point> cert_expiry;
    std::optional<std::string> tls_version;
    for (const auto& [probe, run] : runs.runs) {
        success = success && run.result.outcome.success();
        const RunMetrics& metrics = run.metrics;
        if (!ip_version) ip_version = metrics.ip_version;
        if (metrics.cert_not_after && (!cert_expiry || *metrics.cert_not_after < *cert_expiry))
            cert_expiry = metrics.cert_not_after;
        if (!tls_version) tls_version = metrics.tls_version;
    }
    std::string out;
    gauge(out, "probe_success", "Whether the probe succeeded: every probe of the module.", "",
          success ? 1 : 0);
    gauge(out, "probe_duration_seconds", "How long the probe took to complete in seconds.", "",
          seconds(runs.duration));
    gauge(out, "probe_ip_protocol",
          "The IP protocol of the address connected to: 4 or 6; 0 when none was reached.", "",
          ip_version.value_or(0));
    if (cert_expiry) {
        gauge(out, "probe_ssl_earliest_cert_expiry",
              "Unix time at which the earliest-expiring certificate presented by the server "
              "expires (also when verification failed).",
              "", std::chrono::duration<double>(cert_expiry->time_since_epoch()).count());
    }
    if (tls_version) {
        gauge(out, "probe_tls_version_info", "The TLS version negotiated; always 1.",
              labels_of({{"version", blackbox_tls_version(*tls_version)}}), 1);
    }

    constexpr std::string_view success_name = "mailcanary_probe_run_success";
    append_family_header(out, success_name, "1 if the module's probe succeeded in this run.",
                         "gauge");
    for (const auto& [probe, run] : runs.runs) {
        append_sample(out, success_name, labels_of({{"probe", probe}}),
                      run.result.outcome.success() ? 1.0 : 0.0);
    }
    constexpr std::string_view phase_name = "mailcanary_probe_run_phase_duration_seconds";
    std::string phases;
    for (const auto& [probe, run] : runs.runs) {
        for (const Phase phase : find_probe(probe)->phases()) {
            if (const auto& elapsed =
                    run.metrics.phase_durations[static_cast<std::size_t>(phase)]) {
                append_sample(phases, phase_name,
                              labels_of({{"phase", to_string(phase)}, {"probe", probe}}),
                              seconds(*elapsed));
            }
        }
    }
    if (!phases.empty()) {
        append_family_header(out, phase_name, "Duration of each phase of the run.", "gauge");
        out += phases;
    }
    for (const auto& [probe, run] : runs.runs) {
        if (!run.result.outcome.failure) continue;
        constexpr std::string_view failure_name = "mailcanary_probe_run_failure_info";
        gauge(out, failure_name,
              "Why the run failed (the reasons of mailcanary_probe_failures_total); always 1.",
              labels_of({{"probe", probe}, {"reason", to_string(*run.result.outcome.failure)}}), 1);
    }
    return out;
}

ProbeEndpoint::ProbeEndpoint(Runner run) : run_(std::move(run)) {}

void ProbeEndpoint::configure(const ProbeEndpointConfig& config,
                              std::vector<std::shared_ptr<CompiledTarget>> modules) {
    allow_ = AllowList(config.allow);
    rate_limit_.set_min_interval(config.min_interval_per_host);
    modules_.clear();
    for (auto& module : modules) {
        const std::string name = module->config.name;
        modules_.emplace(name, std::move(module));
    }
}

http::Response ProbeEndpoint::handle(const http::Request& request, Clock::time_point now) {
    auto parsed = parse_probe_request(request);
    if (auto* problem = std::get_if<std::string>(&parsed)) return bad_request(*problem);
    ProbeRequest& asked = std::get<ProbeRequest>(parsed);
    const auto module = modules_.find(asked.module);
    if (module == modules_.end()) {
        std::string known;
        for (const auto& [name, entry] : modules_) known += (known.empty() ? "" : ", ") + name;
        return bad_request("unknown module \"" + asked.module +
                           "\" (modules: " + (known.empty() ? "none configured" : known) + ")");
    }
    if (!allow_.allows(asked.host)) {
        return bad_request("target \"" + asked.host +
                           "\" is not allowed ([probe_endpoint] allow; by default the hosts of "
                           "the configured targets)");
    }
    // Per module and server (host and port): a scrape config listing mx:25 and mx:587 with one
    // module gets both.
    const std::uint16_t port = asked.port.value_or(default_smtp_port(module->second->config.tls));
    std::string server = asked.host;
    std::transform(server.begin(), server.end(), server.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto decision =
        rate_limit_.admit(asked.module + "@" + server + ":" + std::to_string(port), now);
    if (!decision.admitted) {
        const auto wait = std::chrono::ceil<std::chrono::seconds>(decision.retry_after);
        auto response = http::plain_text(
            429, "module \"" + asked.module + "\" ran on \"" + asked.host + ":" +
                     std::to_string(port) + "\" less than min_interval_per_host ago; retry in " +
                     std::to_string(wait.count()) + "s\n");
        response.headers.emplace_back("Retry-After", std::to_string(wait.count()));
        return response;
    }

    // The module's settings on the asked host: a copy, so that a reload meanwhile changes nothing.
    auto target = std::make_shared<CompiledTarget>(*module->second);
    target->config.host = asked.host;
    target->config.port = port;
    target->smtp.host = target->config.host;
    target->smtp.port = target->config.port;
    const auto deadline = now + probe_timeout(asked, target->config.timeout);
    http::Response response;
    response.deferred = [run = run_, target = std::shared_ptr<const CompiledTarget>(target),
                         deadline,
                         debug = asked.debug] { return run_module(run, target, deadline, debug); };
    return response;
}

}  // namespace mailcanary
