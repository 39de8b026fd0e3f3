// The recent runs of one (target, probe), for the status page's sparkline. Bounded like
// blackbox_exporter's probe history: the last kRecentRuns runs, and besides them up to
// kOlderFailures failures that fell out of those, so a failure stays visible long after a
// stretch of successes has pushed the successes around it out.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "protocols/failure_reason.hpp"

namespace mailcanary {

class RunHistory {
  public:
    static constexpr std::size_t kRecentRuns = 60;
    static constexpr std::size_t kOlderFailures = 20;

    struct Run {
        std::chrono::system_clock::time_point finished;
        std::chrono::nanoseconds duration{};
        std::optional<FailureReason> failure;  // none: success
    };

    void add(Run run) {
        recent_.push_back(run);
        if (recent_.size() <= kRecentRuns) return;
        if (recent_.front().failure) {
            older_failures_.push_back(recent_.front());
            if (older_failures_.size() > kOlderFailures) older_failures_.pop_front();
        }
        recent_.pop_front();
    }

    // Oldest first: the older failures, then the recent runs.
    std::vector<Run> runs() const {
        std::vector<Run> all(older_failures_.begin(), older_failures_.end());
        all.insert(all.end(), recent_.begin(), recent_.end());
        return all;
    }

  private:
    std::deque<Run> recent_;
    std::deque<Run> older_failures_;
};

}  // namespace mailcanary
