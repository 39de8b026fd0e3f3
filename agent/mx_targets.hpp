// `mx` targets: the instances one MX lookup makes of a target (one per MX host, labelled
// mx_host, in preference order), and whether the MX set changed. The agent looks the MX records
// up on its loop and applies the instances to the scheduler as a reload would
// (docs/configuration.md, "MX targets").
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.hpp"
#include "probes/probe.hpp"
#include "probes/target_config.hpp"
#include "protocols/dns_resolver.hpp"
#include "protocols/failure_reason.hpp"

namespace mailcanary {

// The most MX hosts of one target that are probed (the label's cardinality); those beyond it,
// the least preferred, are logged and counted.
inline constexpr std::size_t kMaxMxHosts = 10;

// The least time between two lookups of one domain's MX records that a short TTL may ask for;
// also when a failed lookup is tried again.
inline constexpr Duration kMxLookupFloor = std::chrono::seconds(10);

// When to look the MX records up again after `lookup`: when its TTL runs out (kMxLookupFloor
// at the soonest), and at the latest after one interval (also when the TTL is unknown); after a
// failure, kMxLookupFloor or one interval, whichever is sooner.
Duration next_mx_lookup(Duration interval, const MxLookup& lookup);

// What the agent knows of one target's MX set from its lookups.
class MxKnowledge {
  public:
    using Clock = std::chrono::steady_clock;

    // `unknown_ttl`: how long an answer whose TTL is not known lasts (the target's interval,
    // after which it is looked up again anyway).
    void take(MxLookup lookup, Clock::time_point now, Duration unknown_ttl);
    // What the instances are made of at `now`: the last lookup; but after a failed one, the
    // last answer while its TTL lasts, as a resolver (a sending MTA's too) answers from its
    // cache then. Null before any lookup.
    const MxLookup* basis(Clock::time_point now) const;
    // The last lookup that was answered (not a SERVFAIL or a timeout).
    const std::optional<MxLookup>& last_answer() const { return last_answer_; }
    bool answer_lasts(Clock::time_point now) const {
        return last_answer_.has_value() && now < answer_expires_;
    }
    bool last_failed() const { return last_ && last_->result == MxLookup::Result::failed; }

  private:
    std::optional<MxLookup> last_;
    std::optional<MxLookup> last_answer_;
    Clock::time_point answer_expires_{};
};

struct MxInstances {
    // As expand_instances gives them: per MX host (labelled mx_host) its `ip` instances; or, when
    // no MX host can be probed, one instance without labels whose runs fail with `failure`.
    std::vector<TargetConfig> instances;
    std::vector<MxRecord> probed;  // the MX hosts probed, by preference
    std::size_t dropped = 0;       // MX hosts beyond kMaxMxHosts
    // mx_none (no MX, a null MX) or dns (the lookup failed); set on every instance
    std::optional<Failure> failure;
};

// What `lookup` of `target.mx` makes of `target` (an `mx` target as configured). A failed lookup
// (SERVFAIL, a timeout) says nothing about the set: the hosts of `last_answer` (the last lookup
// that was answered), if it named any, stay, each failing with `dns`, so that their series go
// on through a resolver's outage rather than start over after it.
MxInstances mx_instances(const TargetConfig& target, const MxLookup& lookup,
                         const std::optional<MxLookup>& last_answer);

// The instances `made` of `compiled` (an `mx` target as compiled at load, without a host): each
// a copy pointed at its MX host, or the one failing instance carrying the failure.
std::vector<std::shared_ptr<CompiledTarget>> compile_instances(const CompiledTarget& compiled,
                                                               MxInstances made);

// The MX set last answered for one target, to tell when it changes.
class MxSetTracker {
  public:
    // Whether `lookup` answers another MX set than the last answer (records, null MX, no MX or
    // no domain); the first answer is no change, and a failed lookup says nothing about the set.
    bool observe(const MxLookup& lookup);

  private:
    struct Answer {
        MxLookup::Result result;
        std::vector<MxRecord> records;
        bool operator==(const Answer&) const = default;
    };
    std::optional<Answer> last_;
};

// The series of the `mx` targets: changes of the MX set, the hosts probed with their
// preference, and the hosts left out by kMaxMxHosts.
class MxSeries {
  public:
    explicit MxSeries(prometheus::Registry& registry);

    void count_change(const std::string& target);
    // The MX hosts the last lookup of `target` gave (replacing what it gave before).
    void set_hosts(const std::string& target, const std::vector<MxRecord>& probed,
                   std::size_t dropped);
    // `target` is no `mx` target any more: its series go.
    void forget(const std::string& target);

  private:
    prometheus::Family<prometheus::Counter>& changes_;
    prometheus::Family<prometheus::Gauge>& host_info_;
    prometheus::Family<prometheus::Gauge>& dropped_;
    std::map<std::string, std::vector<prometheus::Gauge*>> info_by_target_;
};

}  // namespace mailcanary
