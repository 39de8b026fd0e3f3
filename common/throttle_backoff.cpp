#include "common/throttle_backoff.hpp"

#include <algorithm>

namespace mailcanary {

void ThrottleBackoff::throttled(Clock::time_point now, std::optional<Duration> hint) {
    const Duration step = next_step_ == Duration::zero() ? first_ : next_step_;
    next_step_ = std::min<Duration>(step * 2, longest_);
    last_wait_ = hint ? *hint : step;
    const auto end = now + last_wait_;
    until_ = until_ ? std::max(*until_, end) : end;
}

void ThrottleBackoff::cleared() {
    next_step_ = Duration::zero();
    until_.reset();
}

std::optional<ThrottleBackoff::Clock::time_point> ThrottleBackoff::until(
    Clock::time_point now) const {
    if (until_ && *until_ > now) return until_;
    return std::nullopt;
}

}  // namespace mailcanary
