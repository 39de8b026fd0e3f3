// The roundtrip probe's own series (mailcanary_roundtrip_*), per target: recorded from its runs
// and from what the mailbox trackers see outside any run (late arrivals, messages in flight).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "probes/mailbox_tracker.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

class RoundtripMetrics : public RoundtripEvents {
  public:
    RoundtripMetrics(prometheus::Registry& registry, std::vector<double> submission_buckets);
    ~RoundtripMetrics() override;

    // The series of a target with the roundtrip probe exist from when it is scheduled (counters
    // at 0, so that increase() sees the first loss) until it is removed.
    // `target`: the instance's key (TargetConfig::instance_key), as the events name it;
    // `labels`: those of its series (target and instance labels).
    void add_target(const std::string& target, prometheus::Labels labels);
    void remove_target(const std::string& target);
    void record_run(const std::string& target, const Outcome& outcome, const RunMetrics& run);

    void message_late(const std::string& target) override;
    void leftover_removed(const std::string& mailbox) override;
    void pending_changed(const std::string& target, std::size_t pending) override;

  private:
    struct TargetSeries;

    prometheus::Family<prometheus::Histogram>& seconds_;
    prometheus::Family<prometheus::Histogram>& submission_seconds_;
    prometheus::Family<prometheus::Counter>& delivered_;
    prometheus::Family<prometheus::Counter>& lost_;
    prometheus::Family<prometheus::Counter>& bounced_;
    prometheus::Family<prometheus::Counter>& late_;
    prometheus::Family<prometheus::Gauge>& pending_;
    prometheus::Family<prometheus::Gauge>& auth_result_;
    prometheus::Family<prometheus::Gauge>& server_clock_seconds_;
    prometheus::Family<prometheus::Counter>& leftovers_removed_;
    std::vector<double> submission_buckets_;
    std::map<std::string, std::unique_ptr<TargetSeries>> targets_;
};

}  // namespace mailcanary
