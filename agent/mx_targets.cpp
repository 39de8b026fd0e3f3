#include "agent/mx_targets.hpp"

#include <algorithm>

namespace mailcanary {
namespace {

std::optional<Failure> unprobed(const TargetConfig& target, const MxLookup& lookup) {
    switch (lookup.result) {
        case MxLookup::Result::records:
            // Only root exchanges (null MX records beside each other, against RFC 7505) name
            // no host to probe either.
            if (std::any_of(lookup.records.begin(), lookup.records.end(),
                            [](const MxRecord& record) { return !record.exchange.empty(); }))
                return std::nullopt;
            [[fallthrough]];
        case MxLookup::Result::null_mx:
            return Failure(FailureReason::mx_none,
                           target.mx + " has a null MX (RFC 7505, \"MX 0 .\"): it accepts no mail");
        case MxLookup::Result::no_mx:  // the resolver says so: "no MX record (NODATA from ...)"
            return Failure(
                FailureReason::mx_none,
                target.mx + ": " + (lookup.error.empty() ? "no MX record" : lookup.error));
        case MxLookup::Result::no_domain:
        case MxLookup::Result::failed:
            break;
    }
    return Failure(FailureReason::dns, "looking up the MX records of " + target.mx + ": " +
                                           (lookup.error.empty() ? "failed" : lookup.error));
}

// An instance per MX host of `lookup` (records), in its order, up to kMaxMxHosts.
MxInstances host_instances(const TargetConfig& target, const MxLookup& lookup) {
    MxInstances made;
    std::vector<TargetConfig> hosts;
    for (const MxRecord& record : lookup.records) {
        // A null MX beside other records (against RFC 7505) names no host to probe.
        if (record.exchange.empty()) continue;
        if (made.probed.size() == kMaxMxHosts) {
            ++made.dropped;
            continue;
        }
        made.probed.push_back(record);
        TargetConfig instance = target;
        instance.host = record.exchange;
        instance.instance_labels = {{"mx_host", record.exchange}};
        hosts.push_back(std::move(instance));
    }
    made.instances = expand_instances(std::move(hosts));
    return made;
}

}  // namespace

Duration next_mx_lookup(Duration interval, const MxLookup& lookup) {
    if (lookup.result == MxLookup::Result::failed) return std::min(interval, kMxLookupFloor);
    if (lookup.ttl <= Duration::zero()) return interval;
    return std::min<Duration>(interval, std::max<Duration>(lookup.ttl, kMxLookupFloor));
}

void MxKnowledge::take(MxLookup lookup, Clock::time_point now, Duration unknown_ttl) {
    if (lookup.result != MxLookup::Result::failed) {
        answer_expires_ = now + (lookup.ttl > Duration::zero() ? lookup.ttl : unknown_ttl);
        last_answer_ = lookup;
    }
    last_ = std::move(lookup);
}

const MxLookup* MxKnowledge::basis(Clock::time_point now) const {
    if (!last_) return nullptr;
    if (last_->result == MxLookup::Result::failed && answer_lasts(now)) return &*last_answer_;
    return &*last_;
}

MxInstances mx_instances(const TargetConfig& target, const MxLookup& lookup,
                         const std::optional<MxLookup>& last_answer) {
    std::optional<Failure> failure = unprobed(target, lookup);
    if (!failure) return host_instances(target, lookup);
    MxInstances made;
    // The last answer's hosts, if it named any (only root exchanges name none).
    if (lookup.result == MxLookup::Result::failed && last_answer &&
        !unprobed(target, *last_answer)) {
        made = host_instances(target, *last_answer);
    } else {
        TargetConfig failing = target;
        failing.ip = IpChoice::automatic;  // one series for the outage, whatever `ip` says
        made.instances.push_back(std::move(failing));
    }
    made.failure = std::move(failure);
    return made;
}

std::vector<std::shared_ptr<CompiledTarget>> compile_instances(const CompiledTarget& compiled,
                                                               MxInstances made) {
    std::vector<std::shared_ptr<CompiledTarget>> instances;
    for (TargetConfig& config : made.instances) {
        auto instance = std::make_shared<CompiledTarget>(compiled);
        instance->smtp.host = config.host;
        instance->smtp.family = config.ip_family;
        instance->config = std::move(config);
        instance->unresolved = made.failure;
        instances.push_back(std::move(instance));
    }
    return instances;
}

bool MxSetTracker::observe(const MxLookup& lookup) {
    if (lookup.result == MxLookup::Result::failed) return false;
    Answer answer{lookup.result, lookup.records};
    const bool changed = last_.has_value() && *last_ != answer;
    last_ = std::move(answer);
    return changed;
}

MxSeries::MxSeries(prometheus::Registry& registry)
    : changes_(prometheus::BuildCounter()
                   .Name("mailcanary_mx_changes_total")
                   .Help("Times the MX set of an mx target changed (hosts, preferences, or no "
                         "MX, a null MX, no domain); a failed lookup is no change.")
                   .Register(registry)),
      host_info_(prometheus::BuildGauge()
                     .Name("mailcanary_mx_host_info")
                     .Help("The MX hosts an mx target probes, with their preference; always 1.")
                     .Register(registry)),
      dropped_(prometheus::BuildGauge()
                   .Name("mailcanary_mx_hosts_dropped")
                   .Help("MX hosts of an mx target left unprobed, beyond the 10 most preferred.")
                   .Register(registry)) {}

void MxSeries::count_change(const std::string& target) {
    changes_.Add({{"target", target}}).Increment();
}

void MxSeries::set_hosts(const std::string& target, const std::vector<MxRecord>& probed,
                         std::size_t dropped) {
    // The hosts that stay keep their series (Add finds it): removed and added again, a scrape
    // rendered in between would miss them.
    std::vector<prometheus::Gauge*> now_shown;
    for (const MxRecord& record : probed) {
        auto& gauge = host_info_.Add({{"target", target},
                                      {"mx_host", record.exchange},
                                      {"preference", std::to_string(record.preference)}});
        gauge.Set(1);
        now_shown.push_back(&gauge);
    }
    auto& info = info_by_target_[target];
    for (prometheus::Gauge* gauge : info) {
        if (std::find(now_shown.begin(), now_shown.end(), gauge) == now_shown.end())
            host_info_.Remove(gauge);
    }
    info = std::move(now_shown);
    dropped_.Add({{"target", target}}).Set(static_cast<double>(dropped));
    changes_.Add({{"target", target}});  // 0 from the first lookup, so that increase() sees 1
}

void MxSeries::forget(const std::string& target) {
    set_hosts(target, {}, 0);
    info_by_target_.erase(target);
    dropped_.Remove(&dropped_.Add({{"target", target}}));
    changes_.Remove(&changes_.Add({{"target", target}}));
}

}  // namespace mailcanary
