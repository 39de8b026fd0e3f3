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

#include "common/stop_signal.hpp"
#include "common/transcript.hpp"
#include "probes/target_config.hpp"
#include "protocols/endpoint.hpp"
#include "protocols/outcome.hpp"
#include "protocols/run_metrics.hpp"

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
    Endpoint smtp;         // the target's host, port and TLS, with the TLS context built at load
    std::string password;  // for AUTH, read at load from password_env or password_file
    std::string token_secret;  // signs each probe message's token; set when a probe sends mail
    std::shared_ptr<OAuthTokenSource> oauth;  // the refresh-token flow, with its cached token
    // The roundtrip probe's mailbox: the IMAP password (when not OAuth2), and the tracker shared
    // by every target delivering there (set by the agent, which runs it).
    std::string imap_password;
    std::shared_ptr<OAuthTokenSource> imap_oauth;
    std::shared_ptr<boost::asio::ssl::context> imap_tls_context;  // null when imap_tls = "none"
    std::shared_ptr<MailboxTracker> mailbox;
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

    SessionRun session() const { return {deadline, metrics, transcript, stop}; }
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
