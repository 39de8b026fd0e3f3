#include "agent/scheduler.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <set>
#include <vector>

namespace mailcanary {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// A run that ended by its deadline without the server answering in time held its slot all
// along: its job backs off (docs/configuration.md, "Overload").
Dispatcher::RunEnd run_end(const Outcome& outcome) {
    if (outcome.cancelled) return Dispatcher::RunEnd::stopped;
    if (!outcome.failure) return Dispatcher::RunEnd::answered;
    switch (*outcome.failure) {
        case FailureReason::connect_timeout:
        case FailureReason::banner_timeout:
        case FailureReason::timeout:
            return Dispatcher::RunEnd::timed_out;
        default:
            return Dispatcher::RunEnd::answered;
    }
}

SkipReason skip_reason(HeldBack held_back) {
    switch (held_back) {
        case HeldBack::backoff:
            return SkipReason::backoff;
        case HeldBack::connection_budget:
            return SkipReason::connection_budget;
        case HeldBack::message_budget:
            return SkipReason::message_budget;
    }
    return SkipReason::backoff;
}

// The probe's outcome; a bug in it (an exception) must not take the agent down: it shows up as a
// failed run.
asio::awaitable<Outcome> run_guarded(const ProbeKind& probe, ProbeRun run) {
    try {
        // A probe notices a stop only once it has registered for it: one asked to stop between
        // its start and now (a reload or a shutdown right after) must not begin.
        if (run.stop.requested()) co_return Outcome::stopped();
        if (const auto& unresolved = run.target.unresolved) {
            run.transcript.note(unresolved->detail);
            co_return Outcome::failed(unresolved->reason, unresolved->detail);
        }
        co_return co_await probe.run(run);
    } catch (const std::exception& error) {
        auto outcome = Outcome::failed(FailureReason::protocol,
                                       std::string("internal error: ") + error.what());
        run.transcript.note(outcome.detail);
        co_return outcome;
    }
}

}  // namespace

struct Scheduler::Job {
    Job(std::shared_ptr<const CompiledTarget> compiled, const ProbeKind& entry,
        std::shared_ptr<ProbeSeries> probe_series)
        : target(std::move(compiled)), probe(entry), series(std::move(probe_series)) {}

    std::shared_ptr<const CompiledTarget> target;  // replaced on reload; runs keep their own copy
    const ProbeKind& probe;
    std::shared_ptr<ProbeSeries> series;
    Dispatcher::JobId id = 0;
    bool retired = false;
};

// The timer that wakes the scheduler when the dispatcher has something due. Its loop and the runs
// hold it too: `stopped` tells them the scheduler may be gone.
struct Scheduler::Wakeup {
    explicit Wakeup(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool stopped = false;
};

// A run in flight: made when the dispatcher starts it, so that its slot counts at once (before
// its coroutine first runs), with what it needs to give the slot back early.
struct Scheduler::ActiveRun {
    ActiveRun(Scheduler& owner, std::shared_ptr<Job> of)
        : scheduler(owner),
          wakeup(owner.wakeup_),
          job(std::move(of)),
          group(owner.runs_),
          member(*group, job.get(), stop) {}

    // The run only waits now (for a delivery): its slot goes to the next run due.
    void release_slot() {
        member.release_slot();
        if (!wakeup->stopped) scheduler.dispatch();
    }

    Scheduler& scheduler;  // touched only while the wakeup is not stopped
    std::shared_ptr<Wakeup> wakeup;
    std::shared_ptr<Job> job;
    std::shared_ptr<RunGroup> group;
    StopSignal stop;
    RunGroup::Member member;
};

// A run asked for by run_now(): its slot (`member`) is taken by dispatch() when the dispatcher
// starts it, so that it counts at once, and the asker is woken.
struct Scheduler::Asked {
    Asked(const asio::any_io_executor& executor, std::shared_ptr<RunGroup> runs)
        : slot_given(executor), group(std::move(runs)) {}

    asio::steady_timer slot_given;  // waited on until it has a slot, or until its deadline
    std::shared_ptr<RunGroup> group;
    StopSignal stop;
    std::optional<RunGroup::Member> member;  // set while it holds a slot
};

Scheduler::Scheduler(asio::any_io_executor executor, Metrics& metrics, ResultStore& results,
                     ProbeResources& resources, Options options, ProbeLookup lookup)
    : executor_(std::move(executor)),
      metrics_(metrics),
      results_(results),
      resources_(resources),
      lookup_(std::move(lookup)),
      random_(options.seed),
      dispatcher_(options.max_in_flight),
      runs_(std::make_shared<RunGroup>(executor_)),
      wakeup_(std::make_shared<Wakeup>(executor_)) {
    metrics_.set_in_flight_limit(options.max_in_flight);
    asio::co_spawn(executor_, wake_loop(wakeup_), asio::detached);
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::apply(const std::vector<std::shared_ptr<const CompiledTarget>>& targets) {
    std::map<JobKey, std::pair<std::shared_ptr<const CompiledTarget>, const ProbeKind*>> wanted;
    for (const auto& target : targets) {
        for (const auto& probe_name : target->config.probes) {
            if (const ProbeKind* entry = lookup_(probe_name)) {
                wanted[{target->config.instance_key(), probe_name}] = {target, entry};
            }
        }
    }

    std::vector<Start> starts;
    // The (target, probe) pairs that lose a failing instance: an mx target's hosts replaced by
    // the stand-in of a domain without MX host, or the other way round. The instances that
    // take over run at once, so that the outage has a value all along and an alert's `for:`
    // does not start over.
    std::set<std::pair<std::string, std::string>> failing_replaced;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        const auto found = wanted.find(it->first);
        Job& job = *it->second;
        if (found == wanted.end()) {
            const ProbeResults* results = results_.find(it->first);
            if (results != nullptr && results->last && !results->last->outcome.success())
                failing_replaced.emplace(job.target->config.name, it->first.second);
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
    for (auto& [key, value] : wanted) {
        const bool at_once = failing_replaced.contains({value.first->config.name, key.second});
        starts.push_back({value.first, value.second, nullptr, at_once});
    }
    start_jobs(std::move(starts));
    // Targets, not instances: an `ip = "both"` target counts once.
    std::set<std::string_view> names;
    for (const auto& target : targets) names.insert(target->config.name);
    metrics_.set_targets(names.size());
    dispatch();
}

void Scheduler::set_max_in_flight(unsigned runs) {
    dispatcher_.set_max_in_flight(runs);
    metrics_.set_in_flight_limit(runs);
    if (!wakeup_->stopped) dispatch();  // a raised cap starts runs that wait
}

void Scheduler::start_jobs(std::vector<Start> starts) {
    // By interval, each group in (target, probe) order: a target's probes are due apart, and
    // the instances of one (target, probe) (v4 and v6) share a slot, so they run in the same
    // round and compare like for like.
    using Slot = std::pair<std::string_view, std::string_view>;  // (target, probe)
    std::map<Clock::duration, std::map<Slot, std::vector<Start*>>> by_interval;
    for (auto& start : starts) {
        by_interval[start.target->config.interval][{start.target->config.name, start.probe->name()}]
            .push_back(&start);
    }
    for (auto& [interval, slots] : by_interval) {
        const auto gap = interval / static_cast<Clock::rep>(slots.size());
        std::uniform_int_distribution<Clock::rep> phase(0,
                                                        std::max<Clock::rep>(gap.count(), 1) - 1);
        const auto offsets = even_offsets(slots.size(), interval, Clock::duration(phase(random_)));
        std::size_t slot = 0;
        for (auto& [names, instances] : slots) {
            for (Start* start : instances) {
                // The stand-in of an `mx` target's domain without MX host fails at once: its
                // outage needs no place in the interval to show.
                const bool now = start->at_once || start->target->unresolved;
                start_job(std::move(*start), now ? Clock::duration::zero() : offsets[slot]);
            }
            ++slot;
        }
    }
}

void Scheduler::start_job(Start start, Clock::duration first_offset) {
    const TargetConfig& config = start.target->config;
    const JobKey key{config.instance_key(), std::string(start.probe->name())};
    if (!start.series) {
        start.series =
            metrics_.series_for(config, key.second, start.probe->extra_series(resources_, config));
    }
    start.series->set_schedule(config.interval, std::chrono::system_clock::now());
    auto job =
        std::make_shared<Job>(std::move(start.target), *start.probe, std::move(start.series));
    job->id = dispatcher_.add({.interval = config.interval,
                               .timeout = config.timeout,
                               .max_running = job->probe.max_runs_in_flight(*job->target)},
                              Clock::now() + first_offset);
    by_id_[job->id] = job;
    jobs_[key] = std::move(job);
}

void Scheduler::retire(Job& job) {
    job.retired = true;
    dispatcher_.remove(job.id);
    by_id_.erase(job.id);
    job.series.reset();  // its series disappear now, not when a run in flight ends
    runs_->stop(&job);
}

void Scheduler::stop() {
    wakeup_->stopped = true;
    wakeup_->timer.cancel();
    for (auto& [key, job] : jobs_) retire(*job);
    jobs_.clear();
    for (auto& [id, asked] : asked_) asked->slot_given.cancel();  // they will not get one
    asked_.clear();
    runs_->stop();  // the asked runs in flight too
}

void Scheduler::dispatch() {
    const auto now = Clock::now();
    const auto decisions = dispatcher_.advance(now, runs_->slots());
    for (const auto& skip : decisions.skips) by_id_.at(skip.job)->series->record_skip(skip.reason);
    for (const auto& start : decisions.starts) {
        if (const auto asked = asked_.find(start.job); asked != asked_.end()) {
            metrics_.observe_lateness(start.lateness);
            asked->second->member.emplace(*runs_, asked->second.get(), asked->second->stop);
            asked->second->slot_given.cancel();
            asked_.erase(asked);
            continue;
        }
        const auto& job = by_id_.at(start.job);
        // Its server throttles the agent or a budget is spent: the tick goes by without a run.
        if (const auto held_back = job->probe.hold_back(*job->target, now)) {
            job->series->record_skip(skip_reason(*held_back));
            dispatcher_.ended(start.job, Dispatcher::RunEnd::stopped, now);
            continue;
        }
        metrics_.observe_lateness(start.lateness);
        auto run = std::make_unique<ActiveRun>(*this, job);
        asio::co_spawn(executor_, run_once(std::move(run)), asio::detached);
    }
    metrics_.set_in_flight(runs_->slots());
    metrics_.set_queued(dispatcher_.queued());
    const auto next = dispatcher_.next_wakeup().value_or(Clock::time_point::max());
    // Setting the timer ends the loop's wait on the previous time; it then waits on this one.
    if (wakeup_->timer.expiry() != next) wakeup_->timer.expires_at(next);
}

asio::awaitable<void> Scheduler::wake_loop(std::shared_ptr<Wakeup> wakeup) {
    while (!wakeup->stopped) {
        boost::system::error_code ec;
        co_await wakeup->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!ec && !wakeup->stopped) dispatch();  // an error: the timer was set anew, or stopped
    }
}

asio::awaitable<void> Scheduler::run_once(std::unique_ptr<ActiveRun> run) {
    // A run may end after the scheduler is gone (its destructor stopped the wakeup): until it
    // knows the wakeup is not stopped, it touches only what it holds.
    const std::shared_ptr<Job> job = run->job;
    const std::shared_ptr<Wakeup> wakeup = run->wakeup;
    const auto target = job->target;
    RunMetrics run_metrics;
    RunResult result;
    const auto started = Clock::now();
    // The function captures one pointer, so every run's call gets it without allocating.
    const std::function<void()> waiting = [active = run.get()] { active->release_slot(); };
    result.outcome = co_await run_guarded(
        job->probe, ProbeRun{*target, started + target->config.timeout, run_metrics,
                             result.transcript, run->stop, waiting});
    run.reset();  // its slot, if it still held one, comes free
    if (wakeup->stopped) co_return;
    if (!job->retired) {
        dispatcher_.ended(job->id, run_end(result.outcome), Clock::now());
        if (!result.outcome.cancelled) {
            result.duration = Clock::now() - started;
            result.finished = std::chrono::system_clock::now();
            result.phase_durations = run_metrics.phase_durations;
            if (run_metrics.delivery) result.delivery = run_metrics.delivery->after_acceptance;
            job->series->record_run(result.outcome, run_metrics, result.duration, result.finished);
            const auto backoff = dispatcher_.backoff(job->id);
            job->series->set_backoff(backoff);
            if (observer_) observer_(*target, job->probe.name(), result);
            const JobKey key{target->config.instance_key(), std::string(job->probe.name())};
            results_.record(key, std::move(result));
            results_.set_backoff(key, backoff);
        }
    }
    dispatch();
}

asio::awaitable<Scheduler::AskedRun> Scheduler::run_now(
    std::shared_ptr<const CompiledTarget> target, const ProbeKind& probe,
    Clock::time_point deadline) {
    AskedRun asked_run;
    if (wakeup_->stopped) {
        asked_run.result.outcome = Outcome::stopped();
        co_return asked_run;
    }
    // As in run_once: once the wakeup is stopped, the scheduler may be gone.
    const std::shared_ptr<Wakeup> wakeup = wakeup_;
    const auto asked = std::make_shared<Asked>(executor_, runs_);
    const auto id = dispatcher_.add_once(Clock::now());
    asked_.emplace(id, asked);
    dispatch();  // starts it at once while the cap allows
    if (!asked->member) {
        boost::system::error_code ignored;
        asked->slot_given.expires_at(deadline);
        co_await asked->slot_given.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (!asked->member) {
        if (wakeup->stopped) {
            asked_run.result.outcome = Outcome::stopped();
            co_return asked_run;
        }
        dispatcher_.remove(id);
        asked_.erase(id);
        metrics_.set_queued(dispatcher_.queued());
        asked_run.result.outcome =
            Outcome::failed(FailureReason::timeout,
                            "no slot came free under max_concurrent_probes before the deadline");
        co_return asked_run;
    }
    const auto started = Clock::now();
    const std::function<void()> waiting = [asked, wakeup, this] {
        asked->member->release_slot();
        if (!wakeup->stopped) dispatch();
    };
    asked_run.result.outcome =
        co_await run_guarded(probe, ProbeRun{*target, deadline, asked_run.metrics,
                                             asked_run.result.transcript, asked->stop, waiting});
    asked_run.result.duration = Clock::now() - started;
    asked_run.result.finished = std::chrono::system_clock::now();
    asked->member.reset();  // its slot comes free
    if (!wakeup->stopped) dispatch();
    co_return asked_run;
}

}  // namespace mailcanary
