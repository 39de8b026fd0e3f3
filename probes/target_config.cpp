#include "probes/target_config.hpp"

namespace mailcanary {
namespace {

TargetConfig pinned(TargetConfig target, IpFamily family) {
    target.ip_family = family;
    target.instance_labels.emplace_back("ip_family", family == IpFamily::v4 ? "v4" : "v6");
    return target;
}

}  // namespace

std::vector<TargetConfig> expand_instances(std::vector<TargetConfig> targets) {
    std::vector<TargetConfig> instances;
    instances.reserve(targets.size());
    for (TargetConfig& target : targets) {
        // An `mx` target's hosts come from DNS at run time: its instances are made then, per
        // MX host (agent/mx_targets.hpp), and this expands each of those.
        if (!target.mx.empty() && target.host.empty()) {
            instances.push_back(std::move(target));
            continue;
        }
        switch (target.ip) {
            case IpChoice::automatic:
                instances.push_back(std::move(target));
                break;
            case IpChoice::v4:
                instances.push_back(pinned(std::move(target), IpFamily::v4));
                break;
            case IpChoice::v6:
                instances.push_back(pinned(std::move(target), IpFamily::v6));
                break;
            case IpChoice::both:
                instances.push_back(pinned(target, IpFamily::v4));
                instances.push_back(pinned(std::move(target), IpFamily::v6));
                break;
        }
    }
    return instances;
}

std::size_t count_targets(const std::vector<TargetConfig>& instances) {
    // The instances of one target are next to each other.
    std::size_t count = 0;
    for (std::size_t i = 0; i < instances.size(); ++i) {
        if (i == 0 || instances[i].name != instances[i - 1].name) ++count;
    }
    return count;
}

}  // namespace mailcanary
