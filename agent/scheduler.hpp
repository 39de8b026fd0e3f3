// Runs every (target, probe) on its own clock: first runs spread evenly over the interval, fixed
// rate afterwards, no more runs of a pair at once than its probe kind allows (one, unless its
// runs mostly wait), a global cap on runs in flight with fair admission when it is reached, and
// backoff for pairs whose runs time out (agent/dispatcher.hpp decides all of it; this is the
// half with timers and runs).
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/dispatcher.hpp"
#include "agent/metrics.hpp"
#include "agent/results.hpp"
#include "agent/tick_plan.hpp"
#include "common/run_group.hpp"
#include "probes/probe_kind.hpp"

namespace mailcanary {

class Scheduler {
  public:
    using Clock = std::chrono::steady_clock;
    using ProbeLookup = std::function<const ProbeKind*(std::string_view)>;
    using RunObserver =
        std::function<void(const CompiledTarget&, std::string_view probe, const RunResult&)>;

    struct Options {
        unsigned max_in_flight = 512;
        std::uint64_t seed = std::random_device{}();  // for the phase of first runs
    };

    // `resources`: where the probe kinds keep what their targets share (their own series).
    Scheduler(boost::asio::any_io_executor executor, Metrics& metrics, ResultStore& results,
              ProbeResources& resources, Options options, ProbeLookup lookup);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Makes the scheduled set match `targets`: unchanged (target, probe) pairs keep their
    // schedule and series, changed ones restart, removed ones stop and lose their series.
    void apply(const std::vector<std::shared_ptr<const CompiledTarget>>& targets);
    void set_max_in_flight(unsigned runs);
    unsigned max_in_flight() const { return static_cast<unsigned>(dispatcher_.max_in_flight()); }
    // Called after every completed run (logging).
    void on_run(RunObserver observer) { observer_ = std::move(observer); }

    // What a run asked for by run_now() gives back: no series or result store keeps it.
    struct AskedRun {
        RunResult result;
        RunMetrics metrics;
    };
    // One run of `probe` on `target` now, outside any schedule (the /probe endpoint): it waits
    // for a slot under the same cap as scheduled runs, in the same queue, and ends by
    // `deadline`. A run that got no slot by then fails with `timeout`; one stopped by a
    // shutdown is `cancelled`.
    boost::asio::awaitable<AskedRun> run_now(std::shared_ptr<const CompiledTarget> target,
                                             const ProbeKind& probe, Clock::time_point deadline);

    // Stops every job for good and asks runs in flight to stop (they say QUIT where they can).
    void stop();
    // Runs in flight that hold a slot (use the network; the cap counts these).
    std::size_t in_flight() const { return runs_->slots(); }
    // Runs due that wait in the queue for a slot.
    std::size_t queued() const { return dispatcher_.queued(); }
    // Every run in flight, for a shutdown to wait for.
    const std::shared_ptr<RunGroup>& runs() const { return runs_; }

  private:
    struct Job;
    struct ActiveRun;
    struct Asked;
    struct Wakeup;
    using JobKey = std::pair<std::string, std::string>;  // (target, probe)

    struct Start {
        std::shared_ptr<const CompiledTarget> target;
        const ProbeKind* probe;
        std::shared_ptr<ProbeSeries> series;  // null: new series
        // Due at once rather than at its place in the interval: it takes over from a failing
        // instance of the same (target, probe) that this load removed.
        bool at_once = false;
    };
    // Starts the jobs, those of one interval evenly spread over it.
    void start_jobs(std::vector<Start> starts);
    void start_job(Start start, Clock::duration first_offset);
    void retire(Job& job);
    // Does what the dispatcher says is due now, and sets the timer for what is due next.
    void dispatch();
    boost::asio::awaitable<void> wake_loop(std::shared_ptr<Wakeup> wakeup);
    boost::asio::awaitable<void> run_once(std::unique_ptr<ActiveRun> run);

    boost::asio::any_io_executor executor_;
    Metrics& metrics_;
    ResultStore& results_;
    ProbeResources& resources_;
    ProbeLookup lookup_;
    RunObserver observer_;
    std::mt19937_64 random_;
    Dispatcher dispatcher_;
    std::map<JobKey, std::shared_ptr<Job>> jobs_;
    std::unordered_map<Dispatcher::JobId, std::shared_ptr<Job>> by_id_;
    std::unordered_map<Dispatcher::JobId, std::shared_ptr<Asked>> asked_;  // waiting for a slot
    std::shared_ptr<RunGroup> runs_;  // shared with the runs, which may outlive the scheduler
    std::shared_ptr<Wakeup> wakeup_;  // shared with its loop and the runs, likewise
};

}  // namespace mailcanary
