// The prober contract: a run gets its target, a deadline, a fresh metric sink and a transcript,
// and returns an outcome. The scheduler owns the metrics common to every probe.
#pragma once

#include <utility>

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.hpp"
#include "probes/failure_reason.hpp"
#include "probes/phase.hpp"
#include "probes/transcript.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mailcanary {

class OAuthTokenSource;

// A target as the probes use it: its configuration plus what was built from it at load time.
struct CompiledTarget {
    explicit CompiledTarget(TargetConfig target_config) : config(std::move(target_config)) {}

    TargetConfig config;
    std::shared_ptr<boost::asio::ssl::context> tls_context;  // null when tls = "none"
    std::string password;      // for AUTH, read at load from password_env or password_file
    std::string token_secret;  // signs each probe message's token; set when a probe sends mail
    std::shared_ptr<OAuthTokenSource> oauth;  // the refresh-token flow, with its cached token
};

// What one run measured besides success: filled by the probe, turned into series by the
// scheduler. A fresh one per run, so nothing leaks from one run into the next.
struct RunMetrics {
    std::array<std::optional<std::chrono::nanoseconds>, kPhaseCount> phase_durations;
    std::vector<std::pair<std::string_view, int>> replies;                // (command, reply code)
    std::optional<std::chrono::system_clock::time_point> cert_not_after;  // earliest in chain
    std::optional<std::string> tls_version;
    std::optional<std::string> tls_cipher;

    void add_phase(Phase phase, std::chrono::nanoseconds elapsed) {
        auto& slot = phase_durations[static_cast<std::size_t>(phase)];
        slot = slot.value_or(std::chrono::nanoseconds::zero()) + elapsed;
    }
};

struct Outcome {
    std::optional<FailureReason> failure;  // none: success
    std::string detail;                    // what failed, with the server's reply if any
    bool cancelled = false;                // stopped by shutdown or reload: not a result
    std::string queue_id;                  // the server's id of an accepted message, if it said

    static Outcome failed(FailureReason reason, std::string detail) {
        Outcome outcome;
        outcome.failure = reason;
        outcome.detail = printable(detail);  // it may quote the server: keep it safe to show
        return outcome;
    }
    static Outcome stopped() {
        Outcome outcome;
        outcome.cancelled = true;
        return outcome;
    }

    bool success() const { return !failure && !cancelled; }
};

// Asks a run in flight to stop (shutdown, target removed). Single-threaded like the agent.
class StopSignal {
  public:
    void request() {
        requested_ = true;
        if (auto handler = std::exchange(handler_, nullptr)) handler();
    }
    bool requested() const { return requested_; }
    // The run's current I/O registers how to interrupt it.
    void on_request(std::function<void()> handler) { handler_ = std::move(handler); }
    void clear() { handler_ = nullptr; }

  private:
    bool requested_ = false;
    std::function<void()> handler_;
};

struct ProbeRun {
    const CompiledTarget& target;
    std::chrono::steady_clock::time_point deadline;
    RunMetrics& metrics;
    Transcript& transcript;
    StopSignal& stop;
};

using ProbeFunction = boost::asio::awaitable<Outcome> (*)(ProbeRun run);

struct ProbeEntry {
    std::string_view name;
    ProbeFunction run;
};

}  // namespace mailcanary
