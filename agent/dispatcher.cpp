#include "agent/dispatcher.hpp"

#include <algorithm>

namespace mailcanary {

using Clock = std::chrono::steady_clock;

namespace {

// 1, 2, 4, ... intervals up to the cap.
unsigned backoff_factor(unsigned timeouts_in_a_row) {
    unsigned factor = 1;
    for (unsigned i = 0; i < timeouts_in_a_row && factor < Dispatcher::kMaxBackoffFactor; ++i)
        factor *= 2;
    return std::min(factor, Dispatcher::kMaxBackoffFactor);
}

}  // namespace

Dispatcher::JobId Dispatcher::add(const JobSettings& settings, Clock::time_point first_run) {
    const JobId id = next_id_++;
    jobs_.emplace(id, Job(settings, first_run));
    ticks_.emplace(first_run, id);
    return id;
}

Dispatcher::JobId Dispatcher::add_once(Clock::time_point now) {
    const JobId id = next_id_++;
    // Counted as a job that has run: it asks for one run, not for a first place in the queue.
    const QueueKey key{true, now, arrivals_++, id};
    once_.emplace(id, key);
    queue_.insert(key);
    return id;
}

void Dispatcher::remove(JobId id) {
    if (const auto once = once_.find(id); once != once_.end()) {
        queue_.erase(once->second);
        once_.erase(once);
        return;
    }
    const auto found = jobs_.find(id);
    if (found == jobs_.end()) return;
    stop_waiting(found->second);
    ticks_.erase({found->second.plan.next(), id});
    jobs_.erase(found);
}

Dispatcher::Decisions Dispatcher::advance(Clock::time_point now, std::size_t in_use) {
    Decisions decisions;
    while (!ticks_.empty() && ticks_.begin()->first <= now) {
        const JobId id = ticks_.begin()->second;
        ticks_.erase(ticks_.begin());
        Job& job = jobs_.at(id);
        const auto tick = job.plan.fire(now);
        ticks_.emplace(job.plan.next(), id);
        for (unsigned i = 0; i < tick.missed; ++i)
            decisions.skips.push_back({id, SkipReason::stalled});
        if (job.waiting) {
            stop_waiting(job);
            decisions.skips.push_back({id, SkipReason::concurrency});
        }
        if (!job.due_since) job.due_since = tick.planned;
        if (job.running >= job.settings.max_running) {
            decisions.skips.push_back(
                {id, job.started_late ? SkipReason::concurrency : SkipReason::overlap});
            continue;
        }
        wait_for_slot(id, job, tick.planned);
    }
    for (; in_use < max_in_flight_ && !queue_.empty(); ++in_use) {
        const JobId id = job_of(*queue_.begin());
        if (const auto once = once_.find(id); once != once_.end()) {
            decisions.starts.push_back({id, now - std::get<1>(once->second)});
            queue_.erase(queue_.begin());
            once_.erase(once);
            continue;
        }
        Job& job = jobs_.at(id);
        decisions.starts.push_back({id, now - job.waiting->planned});
        stop_waiting(job);
        ++job.running;
        job.has_run = true;
        job.due_since.reset();
        job.started_late = now + job.settings.timeout > job.plan.next();
    }
    return decisions;
}

void Dispatcher::ended(JobId id, RunEnd end, Clock::time_point now) {
    const auto found = jobs_.find(id);
    if (found == jobs_.end()) return;
    Job& job = found->second;
    if (job.running > 0) --job.running;
    if (job.running == 0) job.started_late = false;
    if (end == RunEnd::stopped) return;
    job.timeouts_in_a_row = end == RunEnd::timed_out ? job.timeouts_in_a_row + 1 : 0;
    const unsigned factor = backoff_factor(job.timeouts_in_a_row);
    if (factor == job.plan.factor()) return;
    ticks_.erase({job.plan.next(), id});
    // Turns by the order jobs were added in, which is the order of their first runs over the
    // interval: jobs that went silent together spread over the stretched interval.
    job.plan.stretch(factor, static_cast<unsigned>(id % factor), now);
    ticks_.emplace(job.plan.next(), id);
}

std::optional<Clock::time_point> Dispatcher::next_wakeup() const {
    if (ticks_.empty()) return std::nullopt;
    return ticks_.begin()->first;
}

Clock::duration Dispatcher::backoff(JobId id) const {
    const auto found = jobs_.find(id);
    if (found == jobs_.end()) return Clock::duration::zero();
    return found->second.plan.delay();
}

void Dispatcher::wait_for_slot(JobId id, Job& job, Clock::time_point planned) {
    job.waiting = Waiting{{job.has_run, *job.due_since, arrivals_++, id}, planned};
    queue_.insert(job.waiting->key);
}

void Dispatcher::stop_waiting(Job& job) {
    if (!job.waiting) return;
    queue_.erase(job.waiting->key);
    job.waiting.reset();
}

}  // namespace mailcanary
