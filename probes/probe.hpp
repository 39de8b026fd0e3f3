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
#include "probes/mail_headers.hpp"
#include "probes/phase.hpp"
#include "probes/transcript.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mailcanary {

class MailboxTracker;
class OAuthTokenSource;

// A target as the probes use it: its configuration plus what was built from it at load time.
struct CompiledTarget {
    explicit CompiledTarget(TargetConfig target_config) : config(std::move(target_config)) {}

    TargetConfig config;
    std::shared_ptr<boost::asio::ssl::context> tls_context;  // null when tls = "none"
    std::string password;      // for AUTH, read at load from password_env or password_file
    std::string token_secret;  // signs each probe message's token; set when a probe sends mail
    std::shared_ptr<OAuthTokenSource> oauth;  // the refresh-token flow, with its cached token
    // The roundtrip probe's mailbox: the IMAP password (when not OAuth2), and the tracker shared
    // by every target delivering there (set by the agent, which runs it).
    std::string imap_password;
    std::shared_ptr<OAuthTokenSource> imap_oauth;
    std::shared_ptr<boost::asio::ssl::context> imap_tls_context;  // null when imap_tls = "none"
    std::shared_ptr<MailboxTracker> mailbox;
};

// What one run measured besides success: filled by the probe, turned into series by the
// scheduler. A fresh one per run, so nothing leaks from one run into the next.
struct RunMetrics {
    std::array<std::optional<std::chrono::nanoseconds>, kPhaseCount> phase_durations;
    std::vector<std::pair<std::string_view, int>> replies;                // (command, reply code)
    std::optional<std::chrono::system_clock::time_point> cert_not_after;  // earliest in chain
    std::optional<std::string> tls_version;
    std::optional<std::string> tls_cipher;
    // A message was sent: when the server accepted it (the final 250), and how long that took
    // from the start of the run.
    std::optional<std::chrono::steady_clock::time_point> message_accepted_at;
    std::optional<std::chrono::nanoseconds> submission;
    // The roundtrip probe's message arrived (in the mailbox or a junk folder).
    struct Delivery {
        std::chrono::nanoseconds after_acceptance{};  // from the final 250 to being seen
        bool junk = false;
        AuthVerdicts verdicts;  // from the trusted Authentication-Results header
        // Between the first and last Received headers, by the servers' clocks (1 s resolution).
        std::optional<std::chrono::seconds> by_server_clocks;
    };
    std::optional<Delivery> delivery;

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
    // Called (if set) when the run stops using the network and only waits, as the roundtrip
    // probe does for delivery: it then no longer counts against max_concurrent_probes.
    const std::function<void()>& waiting;
};

using ProbeFunction = boost::asio::awaitable<Outcome> (*)(ProbeRun run);

struct ProbeEntry {
    std::string_view name;
    ProbeFunction run;
    // How many runs of one target may be in flight at once; null: one (a tick that finds the
    // previous run still going is skipped as an overlap).
    std::size_t (*max_runs_in_flight)(const TargetConfig&) = nullptr;
};

}  // namespace mailcanary
