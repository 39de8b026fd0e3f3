// The prober contract: a run gets its compiled target, a deadline, a fresh metric sink and a
// transcript, and returns an outcome. The scheduler owns the metrics common to every probe.
#pragma once

#include <utility>

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/stop_signal.hpp"
#include "common/transcript.hpp"
#include "probes/target_config.hpp"
#include "protocols/credential_source.hpp"
#include "protocols/endpoint.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/outcome.hpp"
#include "protocols/run_metrics.hpp"

namespace mailcanary {

class SmtpHostLink;

// A target as the probes use it: its configuration plus what was built from it at load time.
struct CompiledTarget {
    explicit CompiledTarget(TargetConfig target_config) : config(std::move(target_config)) {}

    TargetConfig config;
    Endpoint smtp;  // the target's host, port and TLS, with the TLS context built at load
    std::optional<CredentialSource> smtp_login;  // from [targets.auth], when given
    std::string token_secret;  // signs each probe message's token; set when a probe sends mail
    // Its SMTP server's backoff and budgets, shared with every target pointing there; attached
    // by the SMTP kinds (probes/smtp_host.hpp), null until then.
    std::shared_ptr<SmtpHostLink> smtp_host;
    // Set for the one instance of an `mx` target whose MX lookup gave no host to probe (no MX,
    // a null MX, a failed lookup): each run fails with it, so that the outage has a series.
    std::optional<Failure> unresolved;

    // What a kind built for this target at load (ProbeKind::compile), by kind name; a kind asks
    // only for its own, which its compile step made.
    template <typename State>
    State& state_of(std::string_view kind) const {
        return *std::static_pointer_cast<State>(kind_states.find(kind)->second);
    }
    std::map<std::string, std::shared_ptr<void>, std::less<>> kind_states;
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
    // The deadline by the wall clock, for what other hosts read (a probe message's token).
    std::chrono::system_clock::time_point wall_deadline() const {
        return std::chrono::system_clock::now() +
               std::chrono::duration_cast<std::chrono::system_clock::duration>(
                   deadline - std::chrono::steady_clock::now());
    }
};

}  // namespace mailcanary
