// Runs every (target, probe) on its own clock: first runs spread evenly over the interval, fixed
// rate afterwards, no more runs of a pair at once than its probe kind allows (one, unless its
// runs mostly wait), a global cap on runs in flight.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/metrics.hpp"
#include "agent/results.hpp"
#include "common/run_group.hpp"
#include "probes/probe_kind.hpp"

namespace mailcanary {

// When the runs of one job are due. No I/O and no clock of its own, so it is tested with
// made-up times.
class TickPlan {
  public:
    using Clock = std::chrono::steady_clock;

    TickPlan(Clock::time_point first, Clock::duration interval)
        : next_(first), interval_(interval) {}

    Clock::time_point next() const { return next_; }

    struct Tick {
        Clock::duration lateness;  // how late the tick is handled against its planned time
        unsigned missed = 0;       // whole intervals that passed unseen (the loop was stalled)
    };
    // The timer fired at `now`: account for the tick and plan the next one, keeping the rate
    // fixed (no drift) and never planning in the past.
    Tick fire(Clock::time_point now);

  private:
    Clock::time_point next_;
    Clock::duration interval_;
};

// The first-run offsets of `count` jobs that share `interval`: evenly `interval / count` apart,
// from `phase` (below that gap). Random offsets bunch: at 500 STARTTLS runs/s the loop is busy
// three quarters of the time, and runs due together waited for each other's handshakes (p99
// lateness 7 to 40 ms against about 1 ms evenly spaced).
std::vector<std::chrono::steady_clock::duration> even_offsets(
    std::size_t count, std::chrono::steady_clock::duration interval,
    std::chrono::steady_clock::duration phase);

class Scheduler {
  public:
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
    void set_max_in_flight(unsigned runs) { options_.max_in_flight = runs; }
    // Called after every completed run (logging).
    void on_run(RunObserver observer) { observer_ = std::move(observer); }

    // Stops every job and asks runs in flight to stop (they say QUIT where they can).
    void stop();
    // Runs in flight that hold a slot (use the network; the cap counts these).
    std::size_t in_flight() const { return runs_->slots(); }
    // Every run in flight, for a shutdown to wait for.
    const std::shared_ptr<RunGroup>& runs() const { return runs_; }

  private:
    struct Job;
    using Clock = std::chrono::steady_clock;
    using JobKey = std::pair<std::string, std::string>;  // (target, probe)

    struct Start {
        std::shared_ptr<const CompiledTarget> target;
        const ProbeKind* probe;
        std::shared_ptr<ProbeSeries> series;  // null: new series
    };
    // Starts the jobs, those of one interval evenly spread over it.
    void start_jobs(std::vector<Start> starts);
    void start_job(Start start, Clock::duration first_offset);
    void retire(Job& job);
    boost::asio::awaitable<void> job_loop(std::shared_ptr<Job> job);
    boost::asio::awaitable<void> run_once(std::shared_ptr<Job> job);

    boost::asio::any_io_executor executor_;
    Metrics& metrics_;
    ResultStore& results_;
    ProbeResources& resources_;
    Options options_;
    ProbeLookup lookup_;
    RunObserver observer_;
    std::mt19937_64 random_;
    std::map<JobKey, std::shared_ptr<Job>> jobs_;
    std::shared_ptr<RunGroup> runs_;  // shared with the runs, which may outlive the scheduler
};

}  // namespace mailcanary
