// The last run and the last failure of every (target, probe), kept for the status page: at
// 3 a.m. the failure that paged someone must still be readable after later runs succeeded. With
// them, since when the pair has been succeeding or failing, and its recent runs.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "agent/run_history.hpp"
#include "common/transcript.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

struct RunResult {
    Outcome outcome;
    Transcript transcript;
    std::chrono::nanoseconds duration{};
    std::chrono::system_clock::time_point finished;
    // What the status page draws of the run: each phase's time (its waterfall) and, for a
    // message that arrived, how long after acceptance.
    std::array<std::optional<std::chrono::nanoseconds>, kPhaseCount> phase_durations;
    std::optional<std::chrono::nanoseconds> delivery;
};

struct ProbeResults {
    std::optional<RunResult> last;
    std::optional<RunResult> last_failure;
    // When the last run's state (success or failure, whatever the reason) began: the first run
    // in the current streak.
    std::chrono::system_clock::time_point since;
    RunHistory history;
    std::chrono::nanoseconds backoff{};  // how much later than its interval the next run comes
};

class ResultStore {
  public:
    using Key = std::pair<std::string, std::string>;  // (target, probe)

    void record(const Key& key, RunResult result) {
        auto& entry = results_[key];
        const bool success = result.outcome.success();
        if (!entry.last || entry.last->outcome.success() != success) entry.since = result.finished;
        entry.history.add({result.finished, result.duration, result.outcome.failure});
        if (!success) entry.last_failure = result;
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
