// The /probe endpoint's per-host rate limit: at most one run per key (a module on a server) per
// `min_interval`, so that an eager scraper (a 1 s scrape interval, two Prometheus replicas)
// cannot hammer a mail server through the agent. Sans-I/O: the caller says what time it is.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace mailcanary {

class HostRateLimit {
  public:
    using Clock = std::chrono::steady_clock;

    explicit HostRateLimit(Clock::duration min_interval) : min_interval_(min_interval) {}

    // Admits a run for `key` at `now` (and counts it), or says how long until one would be.
    struct Decision {
        bool admitted;
        Clock::duration retry_after;  // when not admitted
    };
    Decision admit(std::string key, Clock::time_point now);

    void set_min_interval(Clock::duration min_interval) { min_interval_ = min_interval; }
    // Keys remembered: at most those admitted within the last interval.
    std::size_t remembered() const { return last_run_.size(); }

  private:
    Clock::duration min_interval_;
    std::unordered_map<std::string, Clock::time_point> last_run_;
};

}  // namespace mailcanary
