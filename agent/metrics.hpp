// The agent's Prometheus series: a handle per (target, probe) that holds its series, so that
// recording a run does no label lookups, and the agent-wide ones.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "agent/config.hpp"
#include "agent/skip_reason.hpp"
#include "probes/probe_kind.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"

namespace mailcanary {

class Metrics;

// The series of one (target, probe). Created when the pair is scheduled, removed with it.
// Recorded on the agent's event loop; written out by /metrics on the render thread.
//
// Kept here rather than as prometheus-cpp metrics: a label map per series, a hash node and a
// copy of the bucket bounds per histogram made about 8 KB per target (docs/benchmarks.md).
class ProbeSeries {
  public:
    // `extra`: the probe kind's own series of the target, kept (and removed) with these;
    // `instance`: the labels of the target's instance (ip_family), on every series here.
    ProbeSeries(Metrics& metrics, std::string target, std::string probe,
                std::unique_ptr<ProbeExtraSeries> extra = nullptr, InstanceLabels instance = {});
    ~ProbeSeries();
    ProbeSeries(const ProbeSeries&) = delete;
    ProbeSeries& operator=(const ProbeSeries&) = delete;

    void record_run(const Outcome& outcome, const RunMetrics& run,
                    std::chrono::nanoseconds duration,
                    std::chrono::system_clock::time_point finished);
    void record_skip(SkipReason reason);
    // The pair was (re)scheduled at `when` with `interval`: its not-yet-run state, which the
    // staleness alert counts from until a run finishes.
    void set_schedule(std::chrono::nanoseconds interval,
                      std::chrono::system_clock::time_point when);
    void set_backoff(std::chrono::nanoseconds backoff);

  private:
    friend class Metrics;

    struct Histogram {
        explicit Histogram(std::size_t bounds) : counts(bounds + 1) {}
        void observe(double value, const std::vector<double>& bounds);
        std::vector<std::uint64_t> counts;  // per bucket, not cumulative; the last is +Inf's
        double sum = 0;
    };

    // This series' samples of one of the families in kProbeFamilies (metrics.cpp).
    void write(std::size_t family, std::string& out) const;
    // The (target, probe) labels, the instance's and `extra`, in alphabetical order as exposed.
    std::string labels_with(
        std::initializer_list<std::pair<std::string_view, std::string_view>> extra) const;
    void record_tls(const RunMetrics& run);

    Metrics& metrics_;
    const std::string target_;
    const std::string probe_;
    const InstanceLabels instance_;
    const std::string labels_;  // labels_with({}): `probe="…",target="…"`, escaped once
    const std::unique_ptr<ProbeExtraSeries> extra_;

    mutable std::mutex mutex_;  // recording (the loop) against writing out (the render thread)
    Histogram duration_;
    std::uint64_t runs_ = 0;
    // Success, last run and failures in a row are absent until the first run (runs_ > 0): a 0
    // before it would read as a failure.
    bool succeeded_ = false;
    double last_run_ = 0;
    std::optional<double> last_success_;
    std::uint64_t consecutive_failures_ = 0;
    // overlap and concurrency from the start; the others absent until they happen.
    std::array<std::optional<std::uint64_t>, kSkipReasonNames.size()> skipped_;
    // Seconds; absent until the scheduler sets them, so that no scrape sees a pair scheduled in
    // 1970 (stale for decades) between its creation and its scheduling.
    struct Schedule {
        double interval;
        double scheduled;  // Unix time
        double backoff = 0;
    };
    std::optional<Schedule> schedule_;
    // Present once seen: a probe only has the phases, reasons and replies it has met.
    std::array<std::optional<Histogram>, kPhaseCount> phase_histograms_;
    std::array<std::optional<double>, kPhaseCount> phase_last_;
    std::array<std::optional<std::uint64_t>, kAllFailureReasons.size()> failures_;
    std::map<std::pair<std::string_view, int>, std::uint64_t> replies_;
    std::optional<double> cert_expiry_;
    std::optional<std::pair<std::string, std::string>> tls_info_;  // version, cipher
    struct CertInfo {
        std::string subject;
        std::string issuer;
        std::string alt_names;  // comma-separated
    };
    std::optional<CertInfo> cert_info_;
};

// Owns the agent's series: the per-(target, probe) ones and a prometheus-cpp registry for the
// rest. Bucket boundaries come from the config the agent started with (changing them needs a
// restart, as series cannot change buckets).
class Metrics {
  public:
    explicit Metrics(const MetricsConfig& config);
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    std::unique_ptr<ProbeSeries> series_for(const std::string& target, std::string_view probe,
                                            std::unique_ptr<ProbeExtraSeries> extra = nullptr) {
        return std::make_unique<ProbeSeries>(*this, target, std::string(probe), std::move(extra));
    }
    // The series of one instance of a target: its name and instance labels.
    std::unique_ptr<ProbeSeries> series_for(const TargetConfig& instance, std::string_view probe,
                                            std::unique_ptr<ProbeExtraSeries> extra = nullptr) {
        return std::make_unique<ProbeSeries>(*this, instance.name, std::string(probe),
                                             std::move(extra), instance.instance_labels);
    }

    void observe_lateness(std::chrono::nanoseconds lateness);
    void set_in_flight(std::size_t runs);
    void set_in_flight_limit(std::size_t runs);
    void set_queued(std::size_t runs);
    void set_targets(std::size_t targets);
    // mailcanary_shard_info: which agent of how many this is.
    void set_shard(const Shard& shard);
    void record_reload(bool successful, std::chrono::system_clock::time_point when);

    const MetricsConfig& config() const { return config_; }
    // Where the probe kinds register their own series.
    prometheus::Registry& registry() { return *registry_; }
    // The exposition, in the Prometheus text format 0.0.4. Thread-safe: /metrics renders it off
    // the loop while runs are recorded.
    std::string serialize() const;

  private:
    friend class ProbeSeries;

    struct ByName {
        bool operator()(const ProbeSeries* a, const ProbeSeries* b) const {
            return std::tie(a->target_, a->instance_, a->probe_) <
                   std::tie(b->target_, b->instance_, b->probe_);
        }
    };

    MetricsConfig config_;
    mutable std::mutex series_mutex_;  // adding and removing series against writing them out
    std::set<const ProbeSeries*, ByName> series_;

    std::shared_ptr<prometheus::Registry> registry_;
    std::shared_ptr<prometheus::Collectable> process_;
    mutable std::atomic<std::size_t> last_size_{0};  // of the last exposition, to reserve for
    prometheus::Histogram& lateness_;
    prometheus::Gauge& in_flight_;
    prometheus::Gauge& in_flight_limit_;
    prometheus::Gauge& queued_;
    prometheus::Gauge& targets_;
    prometheus::Family<prometheus::Gauge>& shard_info_;
    prometheus::Gauge* shard_info_series_ = nullptr;
    prometheus::Gauge& reload_successful_;
    prometheus::Gauge& reload_success_time_;
};

}  // namespace mailcanary
