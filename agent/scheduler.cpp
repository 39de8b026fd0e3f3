#include "agent/scheduler.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <set>
#include <tuple>
#include <vector>

namespace mailcanary {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

TickPlan::Tick TickPlan::fire(Clock::time_point now) {
    Tick tick{std::max(now - next_, Clock::duration::zero())};
    next_ += interval_;
    if (next_ <= now) {
        tick.missed = static_cast<unsigned>((now - next_) / interval_) + 1;
        next_ += interval_ * tick.missed;
    }
    return tick;
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

struct Scheduler::Job {
    Job(const asio::any_io_executor& executor, std::shared_ptr<const CompiledTarget> compiled,
        const ProbeKind& entry, std::shared_ptr<ProbeSeries> probe_series, Clock::duration offset)
        : target(std::move(compiled)),
          probe(entry),
          series(std::move(probe_series)),
          timer(executor),
          first_offset(offset) {}

    std::shared_ptr<const CompiledTarget> target;  // replaced on reload; runs keep their own copy
    const ProbeKind& probe;
    std::shared_ptr<ProbeSeries> series;
    asio::steady_timer timer;
    bool retired = false;
    Clock::duration first_offset;  // from the job's start to its first run
};

Scheduler::Scheduler(asio::any_io_executor executor, Metrics& metrics, ResultStore& results,
                     ProbeResources& resources, Options options, ProbeLookup lookup)
    : executor_(std::move(executor)),
      metrics_(metrics),
      results_(results),
      resources_(resources),
      options_(options),
      lookup_(std::move(lookup)),
      random_(options.seed),
      runs_(std::make_shared<RunGroup>(executor_)) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::apply(const std::vector<std::shared_ptr<const CompiledTarget>>& targets) {
    std::map<JobKey, std::pair<std::shared_ptr<const CompiledTarget>, const ProbeKind*>> wanted;
    for (const auto& target : targets) {
        for (const auto& probe_name : target->config.probes) {
            if (const ProbeKind* entry = lookup_(probe_name)) {
                wanted[{target->config.name, probe_name}] = {target, entry};
            }
        }
    }

    std::vector<Start> starts;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        const auto found = wanted.find(it->first);
        Job& job = *it->second;
        if (found == wanted.end()) {
            retire(job);
            results_.erase(it->first);  // only this pair: the target's other probes keep theirs
            it = jobs_.erase(it);
            continue;
        }
        auto& [target, entry] = found->second;
        if (target->config == job.target->config) {
            // Same settings: the schedule goes on; what was built from them (trust anchors)
            // is taken anew, so a rotated CA file counts from the next run.
            job.target = target;
        } else {
            // New settings, new schedule; the counters go on.
            starts.push_back({target, entry, job.series});
            retire(job);
        }
        wanted.erase(found);
        ++it;
    }
    for (auto& [key, value] : wanted) starts.push_back({value.first, value.second, nullptr});
    start_jobs(std::move(starts));
    metrics_.set_targets(targets.size());
}

void Scheduler::start_jobs(std::vector<Start> starts) {
    // By interval, each group in (target, probe) order: a target's probes are due apart.
    std::map<Clock::duration, std::vector<Start*>> by_interval;
    for (auto& start : starts) by_interval[start.target->config.interval].push_back(&start);
    for (auto& [interval, group] : by_interval) {
        std::sort(group.begin(), group.end(), [](const Start* a, const Start* b) {
            return std::pair<std::string_view, std::string_view>(a->target->config.name,
                                                                 a->probe->name()) <
                   std::pair<std::string_view, std::string_view>(b->target->config.name,
                                                                 b->probe->name());
        });
        const auto gap = interval / static_cast<Clock::rep>(group.size());
        std::uniform_int_distribution<Clock::rep> phase(0,
                                                        std::max<Clock::rep>(gap.count(), 1) - 1);
        const auto offsets = even_offsets(group.size(), interval, Clock::duration(phase(random_)));
        for (std::size_t i = 0; i < group.size(); ++i) start_job(std::move(*group[i]), offsets[i]);
    }
}

void Scheduler::start_job(Start start, Clock::duration first_offset) {
    const JobKey key{start.target->config.name, std::string(start.probe->name())};
    if (!start.series) {
        start.series = metrics_.series_for(key.first, key.second,
                                           start.probe->extra_series(resources_, key.first));
    }
    auto job = std::make_shared<Job>(executor_, std::move(start.target), *start.probe,
                                     std::move(start.series), first_offset);
    jobs_[key] = job;
    asio::co_spawn(executor_, job_loop(std::move(job)), asio::detached);
}

void Scheduler::retire(Job& job) {
    job.retired = true;
    job.series.reset();  // its series disappear now, not when a run in flight ends
    job.timer.cancel();
    runs_->stop(&job);
}

void Scheduler::stop() {
    for (auto& [key, job] : jobs_) retire(*job);
    jobs_.clear();
}

asio::awaitable<void> Scheduler::job_loop(std::shared_ptr<Job> job) {
    const auto interval = job->target->config.interval;
    const std::size_t max_running = job->probe.max_runs_in_flight(*job->target);
    TickPlan plan(Clock::now() + job->first_offset, interval);

    while (!job->retired) {
        job->timer.expires_at(plan.next());
        boost::system::error_code ec;
        co_await job->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (job->retired) break;

        const auto tick = plan.fire(Clock::now());
        metrics_.observe_lateness(tick.lateness);
        for (unsigned i = 0; i < tick.missed; ++i) job->series->record_skip(SkipReason::stalled);
        if (runs_->runs_of(job.get()) >= max_running) {
            job->series->record_skip(SkipReason::overlap);
        } else if (runs_->slots() >= options_.max_in_flight) {
            job->series->record_skip(SkipReason::concurrency);
        } else {
            asio::co_spawn(executor_, run_once(job), asio::detached);
        }
    }
}

asio::awaitable<void> Scheduler::run_once(std::shared_ptr<Job> job) {
    // A run may end after the scheduler is gone (its destructor retired the job): until it knows
    // its job is not retired, it touches only what it holds (the job, the group of runs) and the
    // metrics, which outlive the scheduler.
    const std::shared_ptr<RunGroup> runs = runs_;
    Metrics& metrics = metrics_;
    const auto target = job->target;
    StopSignal stop;
    RunMetrics run_metrics;
    RunResult result;
    const auto started = Clock::now();
    {
        RunGroup::Member member(*runs, job.get(), stop);
        metrics.set_in_flight(runs->slots());
        // A run that only waits (for delivery) holds no connection: it leaves the global cap.
        // The function captures one reference, so every run's call gets it without allocating.
        const std::function<void()> waiting = [&member] { member.release_slot(); };
        try {
            result.outcome =
                co_await job->probe.run(ProbeRun{*target, started + target->config.timeout,
                                                 run_metrics, result.transcript, stop, waiting});
        } catch (const std::exception& error) {
            // A bug must not take the agent down with it; it shows up as a failed run.
            result.outcome = Outcome::failed(FailureReason::protocol,
                                             std::string("internal error: ") + error.what());
            result.transcript.note(result.outcome.detail);
        }
    }
    metrics.set_in_flight(runs->slots());
    if (result.outcome.cancelled || job->retired) co_return;
    result.duration = Clock::now() - started;
    result.finished = std::chrono::system_clock::now();
    job->series->record_run(result.outcome, run_metrics, result.duration, result.finished);
    if (observer_) observer_(*target, job->probe.name(), result);
    results_.record({target->config.name, std::string(job->probe.name())}, std::move(result));
}

}  // namespace mailcanary
