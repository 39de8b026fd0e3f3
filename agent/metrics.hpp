// The agent's Prometheus series: the families, and a handle per (target, probe) that holds its
// series so recording a run does no label lookups.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "agent/config.hpp"
#include "agent/roundtrip_metrics.hpp"
#include "probes/failure_reason.hpp"
#include "probes/phase.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

// overlap: the previous run was still going; concurrency: the global cap on runs in flight was
// reached; stalled: the agent's loop was blocked for a whole interval and the tick passed unseen.
enum class SkipReason { overlap, concurrency, stalled };

class Metrics;

// The series of one (target, probe). Created when the pair is scheduled, removed with it.
// Not thread-safe: used on the agent's event loop only, like everything that records.
class ProbeSeries {
  public:
    ProbeSeries(Metrics& metrics, std::string target, std::string probe);
    ~ProbeSeries();
    ProbeSeries(const ProbeSeries&) = delete;
    ProbeSeries& operator=(const ProbeSeries&) = delete;

    void record_run(const Outcome& outcome, const RunMetrics& run,
                    std::chrono::nanoseconds duration,
                    std::chrono::system_clock::time_point finished);
    void record_skip(SkipReason reason);

  private:
    prometheus::Labels labels_with(
        std::initializer_list<std::pair<const std::string, std::string>> extra) const;
    void record_tls(const RunMetrics& run);

    Metrics& metrics_;
    prometheus::Labels labels_;
    bool roundtrip_;  // the roundtrip probe's series also has the mailcanary_roundtrip_* ones
    prometheus::Histogram& duration_;
    prometheus::Counter& runs_;
    // Absent until there is a result: a 0 before the first run would read as a failure.
    prometheus::Gauge* success_ = nullptr;
    prometheus::Gauge* last_run_ = nullptr;
    prometheus::Gauge* last_success_ = nullptr;
    prometheus::Gauge* consecutive_failures_ = nullptr;
    std::array<prometheus::Counter*, 3> skipped_;  // stalled: created when first needed
    // Created when first needed: a probe only has the phases, reasons and replies it has seen.
    std::array<prometheus::Histogram*, kPhaseCount> phase_histograms_{};
    std::array<prometheus::Gauge*, kPhaseCount> phase_last_{};
    std::array<prometheus::Counter*, kAllFailureReasons.size()> failures_{};
    std::map<std::pair<std::string_view, int>, prometheus::Counter*> replies_;
    prometheus::Gauge* cert_expiry_ = nullptr;
    prometheus::Gauge* tls_info_ = nullptr;
    std::pair<std::string, std::string> tls_info_labels_;
};

// Owns the registry. The families are registered once; bucket boundaries come from the config
// the agent started with (changing them needs a restart, as series cannot change buckets).
class Metrics {
  public:
    explicit Metrics(const MetricsConfig& config);
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    std::unique_ptr<ProbeSeries> series_for(const std::string& target, std::string_view probe) {
        return std::make_unique<ProbeSeries>(*this, target, std::string(probe));
    }

    void observe_lateness(std::chrono::nanoseconds lateness);
    void set_in_flight(std::size_t runs);
    void set_targets(std::size_t targets);
    void record_reload(bool successful, std::chrono::system_clock::time_point when);

    const MetricsConfig& config() const { return config_; }
    // Where the mailbox trackers report what happens outside runs.
    RoundtripEvents& roundtrip_events() { return roundtrip_; }
    // The exposition, in the Prometheus text format 0.0.4. Thread-safe (prometheus-cpp's
    // families lock): /metrics renders it off the loop.
    std::string serialize() const;

  private:
    friend class ProbeSeries;

    MetricsConfig config_;
    std::shared_ptr<prometheus::Registry> registry_;
    std::shared_ptr<prometheus::Collectable> process_;
    mutable std::atomic<std::size_t> last_size_{0};  // of the last exposition, to reserve for

    prometheus::Family<prometheus::Gauge>& success_;
    prometheus::Family<prometheus::Histogram>& duration_;
    prometheus::Family<prometheus::Histogram>& phase_duration_;
    prometheus::Family<prometheus::Gauge>& phase_last_duration_;
    prometheus::Family<prometheus::Counter>& runs_;
    prometheus::Family<prometheus::Counter>& failures_;
    prometheus::Family<prometheus::Gauge>& last_run_;
    prometheus::Family<prometheus::Gauge>& last_success_;
    prometheus::Family<prometheus::Gauge>& consecutive_failures_;
    prometheus::Family<prometheus::Counter>& skipped_;
    prometheus::Family<prometheus::Counter>& smtp_replies_;
    prometheus::Family<prometheus::Gauge>& cert_expiry_;
    prometheus::Family<prometheus::Gauge>& tls_info_;

    prometheus::Histogram& lateness_;
    prometheus::Gauge& in_flight_;
    prometheus::Gauge& targets_;
    prometheus::Gauge& reload_successful_;
    prometheus::Gauge& reload_success_time_;
    RoundtripMetrics roundtrip_;
};

}  // namespace mailcanary
