// GET /probe?module=NAME&target=HOST[:PORT]: one run of a module ([[modules]]) on a host, now,
// answered as blackbox_exporter answers its /probe (probe_success, probe_duration_seconds, ...)
// with mailcanary's phases and failure reason for that run besides, so that Prometheus can drive
// the agent with blackbox's relabelling. Only allowed hosts ([probe_endpoint] allow), each
// module on a host at most once per min_interval_per_host; the runs go through the scheduler's
// cap on runs in flight. docs/metrics.md ("/probe") lists the series.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/config.hpp"
#include "agent/host_rate_limit.hpp"
#include "agent/http_server.hpp"
#include "agent/probe_allow.hpp"
#include "agent/scheduler.hpp"
#include "probes/probe_kind.hpp"

namespace mailcanary {

// What a /probe request asks for, as read from its query and headers.
struct ProbeRequest {
    std::string module;
    std::string host;  // a name, or an address (IPv6 without brackets)
    std::optional<std::uint16_t> port;
    bool debug = false;
    // X-Prometheus-Scrape-Timeout-Seconds, when the scraper sent it.
    std::optional<std::chrono::nanoseconds> scrape_timeout;
};

// The request, or why it is not one (for a 400).
std::variant<ProbeRequest, std::string> parse_probe_request(const http::Request& request);

// How long the run may take: the scrape's timeout less a margin for the answer to reach
// Prometheus (as blackbox_exporter's --timeout-offset), and never more than the module's.
std::chrono::nanoseconds probe_timeout(const ProbeRequest& request,
                                       std::chrono::nanoseconds module_timeout);

// The runs of one request, each probe of the module in order (the first failure ends them).
struct ProbeRuns {
    struct Run {
        std::string_view probe;
        Scheduler::AskedRun run;
    };
    std::vector<Run> runs;
    std::chrono::nanoseconds duration{};
};

// The Prometheus text exposition of the runs (docs/metrics.md, "/probe").
std::string render_probe_metrics(const ProbeRuns& runs);

class ProbeEndpoint {
  public:
    using Clock = std::chrono::steady_clock;
    using Runner = std::function<boost::asio::awaitable<Scheduler::AskedRun>(
        std::shared_ptr<const CompiledTarget>, const ProbeKind&, Clock::time_point deadline)>;

    // `run`: one run under the agent's cap (Scheduler::run_now).
    explicit ProbeEndpoint(Runner run);

    // At start and at each reload: the modules as compiled, and who may be probed how often.
    void configure(const ProbeEndpointConfig& config,
                   std::vector<std::shared_ptr<CompiledTarget>> modules);

    // A 400 for a bad request, an unknown module or a host not allowed, a 429 for one too soon;
    // else a response made once the runs are over.
    http::Response handle(const http::Request& request, Clock::time_point now);

  private:
    Runner run_;
    AllowList allow_{{}};
    HostRateLimit rate_limit_{Clock::duration::zero()};
    std::map<std::string, std::shared_ptr<const CompiledTarget>, std::less<>> modules_;
};

}  // namespace mailcanary
