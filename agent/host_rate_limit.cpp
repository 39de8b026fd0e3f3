#include "agent/host_rate_limit.hpp"

namespace mailcanary {

HostRateLimit::Decision HostRateLimit::admit(std::string key, Clock::time_point now) {
    // Forget the keys whose interval is over, so that many targets probed once leave nothing.
    std::erase_if(last_run_,
                  [&](const auto& entry) { return now - entry.second >= min_interval_; });
    const auto [entry, inserted] = last_run_.try_emplace(std::move(key), now);
    if (inserted) return {true, Clock::duration::zero()};
    return {false, entry->second + min_interval_ - now};
}

}  // namespace mailcanary
