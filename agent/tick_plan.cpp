#include "agent/tick_plan.hpp"

#include <algorithm>

namespace mailcanary {

using Clock = std::chrono::steady_clock;

TickPlan::Tick TickPlan::fire(Clock::time_point now) {
    Tick tick{next_, std::max(now - next_, Clock::duration::zero())};
    last_ = next_;
    next_ += step();
    if (next_ <= now) {
        tick.missed = static_cast<unsigned>((now - next_) / step()) + 1;
        next_ += step() * tick.missed;
    }
    return tick;
}

void TickPlan::stretch(unsigned factor, unsigned turn, Clock::time_point now) {
    factor_ = factor;
    if (!last_) return;  // before the first tick: it comes as planned
    const auto last_number = static_cast<unsigned>(((*last_ - first_) / interval_) % factor);
    const unsigned ahead = (turn % factor + factor - last_number) % factor;
    next_ = *last_ + interval_ * (ahead == 0 ? factor : ahead);
    // Only a run that ended after its job's next tick was due gets here.
    if (next_ <= now) next_ += step() * ((now - next_) / step() + 1);
}

Clock::duration TickPlan::delay() const {
    if (!last_) return Clock::duration::zero();
    return std::max(next_ - *last_ - interval_, Clock::duration::zero());
}

std::vector<Clock::duration> even_offsets(std::size_t count, Clock::duration interval,
                                          Clock::duration phase) {
    std::vector<Clock::duration> offsets;
    offsets.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        offsets.push_back(phase +
                          interval * static_cast<Clock::rep>(i) / static_cast<Clock::rep>(count));
    }
    return offsets;
}

}  // namespace mailcanary
