// How long to stay away from a server that asked the client to slow down: as long as it said,
// when it said, else twice as long each time in a row, up to a cap; the first time it lets the
// client in again ends it. No clock of its own: the caller says when, so it is tested with
// made-up times. One per thing the server throttles (an IMAP account; an SMTP host).
#pragma once

#include <chrono>
#include <optional>

#include "common/duration.hpp"

namespace mailcanary {

class ThrottleBackoff {
  public:
    using Clock = std::chrono::steady_clock;

    // Without a hint: `first`, then doubling up to `longest`.
    ThrottleBackoff(Duration first, Duration longest) : first_(first), longest_(longest) {}

    // Throttled at `now`, the server's hint (if any) saying for how long. A backoff already in
    // force ends no sooner than it would have.
    void throttled(Clock::time_point now, std::optional<Duration> hint);
    // The server let the client in: no backoff, and the next one starts over at `first`.
    void cleared();
    // Until when to stay away, if that is after `now`.
    std::optional<Clock::time_point> until(Clock::time_point now) const;
    // Without a hint, start over at `first` from now on (a new configuration); a backoff in
    // force or in a row goes on as it was.
    void set_first(Duration first) { first_ = first; }
    // How long the last throttling asked for (the hint, or the step reached), for logs.
    Duration last_wait() const { return last_wait_; }

  private:
    Duration first_;
    Duration longest_;
    Duration next_step_ = Duration::zero();  // zero: the next throttling is the first in a row
    Duration last_wait_ = Duration::zero();
    std::optional<Clock::time_point> until_;
};

}  // namespace mailcanary
