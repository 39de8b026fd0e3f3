// When the runs of one job are due. No I/O and no clock of its own, so it is tested with
// made-up times.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace mailcanary {

class TickPlan {
  public:
    using Clock = std::chrono::steady_clock;

    TickPlan(Clock::time_point first, Clock::duration interval)
        : first_(first), next_(first), interval_(interval) {}

    Clock::time_point next() const { return next_; }

    struct Tick {
        Clock::time_point planned;  // when it was due
        Clock::duration lateness;   // how late the tick is handled against its planned time
        unsigned missed = 0;        // whole steps that passed unseen (the loop was stalled)
    };
    // The timer fired at `now`: account for the tick and plan the next one a step later, keeping
    // the rate fixed (no drift) and never planning in the past.
    Tick fire(Clock::time_point now);

    // From the last tick on, runs come every `factor` intervals (1: the configured interval) on
    // the ticks of the grid whose number, counting intervals from the first tick, leaves `turn`
    // when divided by `factor`: jobs stretched together take turns instead of coming back all at
    // once. The next tick moves at once to the first such tick after the last one (at most
    // `factor` intervals on), or later if that is before `now`.
    void stretch(unsigned factor, unsigned turn, Clock::time_point now);
    unsigned factor() const { return factor_; }
    // How much more than one interval lies between the last tick and the next: 0 unless
    // stretched.
    Clock::duration delay() const;

  private:
    Clock::duration step() const { return interval_ * factor_; }

    Clock::time_point first_;
    Clock::time_point next_;
    Clock::duration interval_;
    unsigned factor_ = 1;
    std::optional<Clock::time_point> last_;  // the planned time of the last tick fired
};

// The first-run offsets of `count` jobs that share `interval`: evenly `interval / count` apart,
// from `phase` (below that gap). Random offsets bunch: at 500 STARTTLS runs/s the loop is busy
// three quarters of the time, and runs due together waited for each other's handshakes (p99
// lateness 7 to 40 ms against about 1 ms evenly spaced).
std::vector<std::chrono::steady_clock::duration> even_offsets(
    std::size_t count, std::chrono::steady_clock::duration interval,
    std::chrono::steady_clock::duration phase);

}  // namespace mailcanary
