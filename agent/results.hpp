// The last run and the last failure of every (target, probe), kept for the status page: at
// 3 a.m. the failure that paged someone must still be readable after later runs succeeded.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/transcript.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

struct RunResult {
    Outcome outcome;
    Transcript transcript;
    std::chrono::nanoseconds duration{};
    std::chrono::system_clock::time_point finished;
};

struct ProbeResults {
    std::optional<RunResult> last;
    std::optional<RunResult> last_failure;
    std::chrono::nanoseconds backoff{};  // how much later than its interval the next run comes
};

class ResultStore {
  public:
    using Key = std::pair<std::string, std::string>;  // (target, probe)

    void record(const Key& key, RunResult result) {
        auto& entry = results_[key];
        if (!result.outcome.success()) entry.last_failure = result;
        entry.last = std::move(result);
    }
    void set_backoff(const Key& key, std::chrono::nanoseconds backoff) {
        results_[key].backoff = backoff;
    }
    void erase(const Key& key) { results_.erase(key); }
    const std::map<Key, ProbeResults>& all() const { return results_; }
    const ProbeResults* find(const Key& key) const {
        const auto found = results_.find(key);
        return found == results_.end() ? nullptr : &found->second;
    }

  private:
    std::map<Key, ProbeResults> results_;
};

}  // namespace mailcanary
