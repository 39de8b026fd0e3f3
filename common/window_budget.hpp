// At most so many uses in any window of time (a sliding window): a host's connections a minute,
// an account's messages an hour. No clock of its own: the caller says when, so it is tested with
// made-up times. Memory is one time point per use within the window, bounded by the limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

#include "common/duration.hpp"

namespace mailcanary {

class WindowBudget {
  public:
    using Clock = std::chrono::steady_clock;

    explicit WindowBudget(Duration window) : window_(window) {}

    // Whether one more use at `now` stays within `limit` uses in the window. The limit is the
    // caller's, as it may change (a reload), and uses past the window are forgotten here.
    bool allows(Clock::time_point now, std::size_t limit);
    // Counts a use at `now` (after allows() said yes).
    void take(Clock::time_point now) { uses_.push_back(now); }

  private:
    Duration window_;
    std::deque<Clock::time_point> uses_;  // oldest first
};

}  // namespace mailcanary
