// Wall time per phase of a run, into its RunMetrics. A phase entered twice (EHLO before and after
// STARTTLS) adds up. A phase that ends with a reply ends when the reply arrived (arrived()), not
// when the loop got to it; the next starts when the agent acts. The moments in between, when the
// agent's loop was busy elsewhere, are in no phase (they are in the run's duration).
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "protocols/phase.hpp"
#include "protocols/run_metrics.hpp"

namespace mailcanary {

class PhaseClock {
  public:
    using Clock = std::chrono::steady_clock;

    // Null `metrics`: the phase is still known (it names failures), but nothing is recorded.
    explicit PhaseClock(RunMetrics* metrics) : metrics_(metrics) {}

    // What was just read arrived at `at`: the end of the current phase if the next enter()
    // leaves it.
    void arrived(Clock::time_point at) { arrival_ = at; }

    // None: what follows is in no phase; the current one ends.
    void enter(std::optional<Phase> phase) {
        const auto now = Clock::now();
        const auto arrival = std::exchange(arrival_, std::nullopt);
        if (phase == current_) return;
        if (current_ && metrics_ != nullptr) {
            // The arrival of the last read, if nothing happened since, within the phase.
            const auto end = arrival ? std::clamp(*arrival, since_, now) : now;
            metrics_->add_phase(*current_, end - since_);
            metrics_->phase_spans.push_back({*current_, since_, end - since_});
        }
        since_ = now;
        current_ = phase;
    }

    std::optional<Phase> current() const { return current_; }

  private:
    RunMetrics* metrics_;
    std::optional<Phase> current_;
    Clock::time_point since_;
    std::optional<Clock::time_point> arrival_;
};

}  // namespace mailcanary
