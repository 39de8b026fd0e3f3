#include "common/window_budget.hpp"

namespace mailcanary {

bool WindowBudget::allows(Clock::time_point now, std::size_t limit) {
    while (!uses_.empty() && uses_.front() + window_ <= now) uses_.pop_front();
    return uses_.size() < limit;
}

}  // namespace mailcanary
