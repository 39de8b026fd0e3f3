// Decides, for every job (a (target, probe) pair), when its runs are due, whether a due run
// starts, waits for a slot or is skipped, and how far a job whose runs time out backs off. The
// sans-I/O half of the Scheduler: no timers, no clock, no runs of its own, so it is tested with
// made-up times.
//
// Overload: while fewer runs than the cap hold a slot, a due run starts at once (the cap counts
// the slots held, a run in flight that only waits holds none). Otherwise it waits, and each slot
// that comes free goes to the waiting run of the job that has been due the longest: jobs that
// never ran first, then by the planned time of the oldest tick that got no run (so a starved job
// overtakes one that ran at its last tick), then by arrival. A run still waiting at its job's
// next tick is skipped as `concurrency`, and the new tick's run waits in its place, keeping the
// job's turn. A run that started so late that it is still going at its job's next tick has that
// tick skipped as `concurrency` too: the wait, not the server, took it.
//
// Backoff: each run in a row that timed out waiting for the server doubles the job's interval,
// up to kMaxBackoffFactor intervals; the first run that gets an answer brings the interval back.
// Jobs that back off take turns among the ticks of their stretched interval (TickPlan::stretch),
// so that servers that went silent together (an agent cut off from the network) are not all
// probed in the same interval.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/skip_reason.hpp"
#include "agent/tick_plan.hpp"

namespace mailcanary {

class Dispatcher {
  public:
    using Clock = std::chrono::steady_clock;
    using JobId = std::uint64_t;

    static constexpr unsigned kMaxBackoffFactor = 4;

    struct JobSettings {
        Clock::duration interval{};
        Clock::duration timeout{};
        std::size_t max_running = 1;  // runs of the job at once
    };
    enum class RunEnd { answered, timed_out, stopped };

    struct Start {
        JobId job;
        Clock::duration lateness;  // from the run's planned time
    };
    struct Skip {
        JobId job;
        SkipReason reason;
    };
    struct Decisions {
        std::vector<Start> starts;
        std::vector<Skip> skips;
    };

    explicit Dispatcher(std::size_t max_in_flight) : max_in_flight_(max_in_flight) {}

    JobId add(const JobSettings& settings, Clock::time_point first_run);
    // A single run asked for at `now`, outside any schedule (the /probe endpoint): it waits in
    // the same queue as scheduled runs, behind those due before it, and is forgotten once
    // advance() starts it; remove() takes it back while it waits. ended() is not called for it.
    JobId add_once(Clock::time_point now);
    // Forgets the job: its waiting run goes uncounted, the end of its runs in flight is ignored.
    void remove(JobId job);
    void set_max_in_flight(std::size_t runs) { max_in_flight_ = runs; }
    std::size_t max_in_flight() const { return max_in_flight_; }

    // Everything due by `now`, while `in_use` slots are held: ticks fire (their run waits, or is
    // skipped), and waiting runs start while the cap allows. Call it at next_wakeup() and
    // whenever a slot comes free.
    Decisions advance(Clock::time_point now, std::size_t in_use);
    // A run that advance() started ended at `now`.
    void ended(JobId job, RunEnd end, Clock::time_point now);

    // When advance() has something to do next: the next tick of a job.
    std::optional<Clock::time_point> next_wakeup() const;
    std::size_t queued() const { return queue_.size(); }
    // How much later than one interval after its last tick the job's next run comes: 0 unless
    // it backs off.
    Clock::duration backoff(JobId job) const;

  private:
    // In the order waiting runs get a slot: jobs that have run after those that never did, then
    // the oldest tick without a run, then arrival; the job last.
    using QueueKey = std::tuple<bool, Clock::time_point, std::uint64_t, JobId>;
    static JobId job_of(const QueueKey& key) { return std::get<3>(key); }

    struct Waiting {
        QueueKey key;
        Clock::time_point planned;  // the tick it is for
    };
    struct Job {
        Job(const JobSettings& job_settings, Clock::time_point first_run)
            : settings(job_settings), plan(first_run, job_settings.interval) {}

        JobSettings settings;
        TickPlan plan;
        std::size_t running = 0;
        unsigned timeouts_in_a_row = 0;
        bool has_run = false;
        bool started_late = false;  // its run in flight may still go at its next tick: it waited
        // The planned time of the oldest tick that got no run since the job's last run started.
        std::optional<Clock::time_point> due_since;
        std::optional<Waiting> waiting;
    };

    void wait_for_slot(JobId id, Job& job, Clock::time_point planned);
    void stop_waiting(Job& job);

    std::size_t max_in_flight_;
    JobId next_id_ = 1;
    std::uint64_t arrivals_ = 0;
    std::unordered_map<JobId, Job> jobs_;
    std::set<std::pair<Clock::time_point, JobId>> ticks_;  // each job's next tick
    std::set<QueueKey> queue_;                             // waiting runs, first served first
    std::unordered_map<JobId, QueueKey> once_;             // single runs waiting (add_once)
};

}  // namespace mailcanary
