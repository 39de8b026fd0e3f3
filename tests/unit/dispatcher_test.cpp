// The Dispatcher with made-up times: overload (fair admission under the cap), backoff.
#include "agent/dispatcher.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using JobId = Dispatcher::JobId;
using RunEnd = Dispatcher::RunEnd;

const Clock::time_point kStart{};

// How a job's server behaves for a run started at a given time: answers after a delay, or never
// (nullopt: the run holds its slot until its timeout).
using Server = std::function<std::optional<Clock::duration>(Clock::time_point started)>;

Server answers_after(Clock::duration delay) {
    return [delay](Clock::time_point) { return delay; };
}
Server silent() {
    return [](Clock::time_point) { return std::nullopt; };
}

// Made-up time around a Dispatcher, driven as the Scheduler drives it: advance() at every wakeup
// and after every run's end; a run holds its slot until its server answers or its timeout.
class Simulation {
  public:
    struct Outcome {
        bool started;
        Clock::time_point at;
        SkipReason reason = SkipReason::overlap;  // when not started
    };

    explicit Simulation(std::size_t cap) : dispatcher_(cap) {}

    JobId add(Dispatcher::JobSettings settings, Clock::duration first_run, Server server) {
        const JobId id = dispatcher_.add(settings, kStart + first_run);
        jobs_[id] = {settings, std::move(server), {}};
        return id;
    }

    void run_until(Clock::time_point end) {
        for (;;) {
            std::optional<Clock::time_point> next = dispatcher_.next_wakeup();
            if (!ends_.empty() && (!next || std::get<0>(*ends_.begin()) < *next))
                next = std::get<0>(*ends_.begin());
            if (!next || *next > end) return;
            now_ = *next;
            while (!ends_.empty() && std::get<0>(*ends_.begin()) <= now_) {
                const auto [at, id, end_kind] = *ends_.begin();
                ends_.erase(ends_.begin());
                dispatcher_.ended(id, end_kind, now_);
                --in_use_;
            }
            const auto decisions = dispatcher_.advance(now_, in_use_);
            for (const auto& start : decisions.starts) begin_run(start);
            for (const auto& skip : decisions.skips) {
                jobs_[skip.job].outcomes.push_back({false, now_, skip.reason});
            }
            // A run waits only for a slot that is not there.
            if (dispatcher_.queued() > 0) {
                EXPECT_EQ(in_use_, cap());
            }
        }
    }

    const std::vector<Outcome>& outcomes(JobId id) { return jobs_[id].outcomes; }
    std::vector<Clock::time_point> starts(JobId id) {
        std::vector<Clock::time_point> times;
        for (const auto& outcome : jobs_[id].outcomes) {
            if (outcome.started) times.push_back(outcome.at);
        }
        return times;
    }
    std::size_t most_in_use() const { return most_in_use_; }
    std::size_t cap() const { return dispatcher_.max_in_flight(); }
    Dispatcher& dispatcher() { return dispatcher_; }

  private:
    struct Job {
        Dispatcher::JobSettings settings;
        Server server;
        std::vector<Outcome> outcomes;
    };

    void begin_run(const Dispatcher::Start& start) {
        Job& job = jobs_[start.job];
        // No run starts at or after its job's next tick.
        EXPECT_LT(start.lateness, job.settings.interval + dispatcher_.backoff(start.job));
        job.outcomes.push_back({true, now_});
        const auto answer = job.server(now_);
        const bool answered = answer && *answer < job.settings.timeout;
        ends_.emplace(now_ + (answered ? *answer : job.settings.timeout), start.job,
                      answered ? RunEnd::answered : RunEnd::timed_out);
        most_in_use_ = std::max(most_in_use_, ++in_use_);
    }

    Dispatcher dispatcher_;
    Clock::time_point now_ = kStart;
    std::size_t in_use_ = 0;
    std::size_t most_in_use_ = 0;
    std::map<JobId, Job> jobs_;
    std::set<std::tuple<Clock::time_point, JobId, RunEnd>> ends_;
};

// The longest streak of ticks in a row that got no run.
std::size_t longest_skip_streak(const std::vector<Simulation::Outcome>& outcomes) {
    std::size_t longest = 0;
    std::size_t streak = 0;
    for (const auto& outcome : outcomes) {
        streak = outcome.started ? 0 : streak + 1;
        longest = std::max(longest, streak);
    }
    return longest;
}

// --- Overload -----------------------------------------------------------------------------------

// The promise (docs/configuration.md, "Overload"): while the cap is reached, every job still gets
// a run at least once every two of its ticks, and none is left without one while others run.
TEST(Dispatcher, UnderOverloadEveryJobRunsAtLeastEveryOtherTick) {
    // 16 silent servers hold a slot for their whole timeout: 16 x 3 s every 5 s is 9.6 slots of
    // work for 4 slots until they back off.
    Simulation sim(4);
    const Dispatcher::JobSettings settings{.interval = 5s, .timeout = 3s};
    std::vector<JobId> silent_jobs;
    std::vector<JobId> answering_jobs;
    const auto offsets = even_offsets(20, settings.interval, 0s);
    for (std::size_t i = 0; i < 20; ++i) {
        if (i % 5 == 4) {
            answering_jobs.push_back(sim.add(settings, offsets[i], answers_after(10ms)));
        } else {
            silent_jobs.push_back(sim.add(settings, offsets[i], silent()));
        }
    }
    sim.run_until(kStart + 10min);

    EXPECT_EQ(sim.most_in_use(), 4u) << "the cap is reached, never passed";
    std::size_t concurrency_skips = 0;
    for (const JobId id : silent_jobs) {
        const auto& outcomes = sim.outcomes(id);
        ASSERT_FALSE(outcomes.empty());
        EXPECT_LE(longest_skip_streak(outcomes), 1u) << "job " << id;
        for (const auto& outcome : outcomes) {
            concurrency_skips += !outcome.started && outcome.reason == SkipReason::concurrency;
        }
        // Backed off: every 4 intervals by the end.
        const auto starts = sim.starts(id);
        ASSERT_GE(starts.size(), 3u);
        EXPECT_EQ(starts.back() - starts[starts.size() - 2], 20s) << "job " << id;
    }
    EXPECT_GT(concurrency_skips, 0u) << "the load was meant to exceed the cap at first";
    for (const JobId id : answering_jobs) {
        EXPECT_LE(longest_skip_streak(sim.outcomes(id)), 1u) << "job " << id;
        EXPECT_GE(sim.starts(id).size(), 115u) << "about one run per interval";
    }
}

// The case at full size: 2,000 silent servers, 8 misbehaving ones answering within a
// second and one healthy, a cap of 352 (the default at 1,024 descriptors): every target has a
// result within three intervals of the start.
TEST(Dispatcher, ACapFarBelowTheLoadLeavesNoTargetWithoutAResult) {
    Simulation sim(352);
    const Dispatcher::JobSettings settings{.interval = 5s, .timeout = 2s};
    const auto offsets = even_offsets(2009, settings.interval, 1ms);
    std::vector<JobId> jobs;
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        Server server =
            i % 250 == 7 ? answers_after(std::chrono::milliseconds(100 * (i % 9))) : silent();
        jobs.push_back(sim.add(settings, offsets[i], server));
    }
    sim.run_until(kStart + 2min);
    for (const JobId id : jobs) {
        const auto starts = sim.starts(id);
        ASSERT_FALSE(starts.empty()) << "job " << id;
        EXPECT_LE(starts.front() + settings.timeout, kStart + 3 * settings.interval)
            << "job " << id;
        EXPECT_LE(longest_skip_streak(sim.outcomes(id)), 1u) << "job " << id;
    }
    EXPECT_EQ(sim.most_in_use(), 352u);
}

std::vector<JobId> started(const Dispatcher::Decisions& decisions) {
    std::vector<JobId> ids;
    for (const auto& start : decisions.starts) ids.push_back(start.job);
    return ids;
}

Clock::time_point at(std::chrono::milliseconds offset) { return kStart + offset; }

// The slot that comes free goes to the job due the longest: one that never ran, then one that
// got no run at its last tick, then one that did, whatever the order they started waiting in.
TEST(Dispatcher, AStarvedJobOvertakesOneThatRanAtItsLastTick) {
    Dispatcher dispatcher(1);
    const Dispatcher::JobSettings settings{.interval = 10s, .timeout = 3s};
    const JobId starved = dispatcher.add(settings, kStart);
    const JobId frequent = dispatcher.add(settings, kStart + 5s);
    const JobId hog = dispatcher.add({.interval = 1000s, .timeout = 999s}, kStart + 8s);
    const JobId newcomer = dispatcher.add(settings, kStart + 19500ms);

    EXPECT_EQ(started(dispatcher.advance(at(0ms), 0)), std::vector<JobId>{starved});
    dispatcher.ended(starved, RunEnd::answered, at(100ms));
    EXPECT_EQ(started(dispatcher.advance(at(5s), 0)), std::vector<JobId>{frequent});
    dispatcher.ended(frequent, RunEnd::answered, at(5100ms));
    EXPECT_EQ(started(dispatcher.advance(at(8s), 0)), std::vector<JobId>{hog});
    // The hog holds the only slot: `starved` waits from its tick at 10 s, `frequent` from 15 s,
    // `newcomer` from 19.5 s.
    EXPECT_TRUE(dispatcher.advance(at(10s), 1).starts.empty());
    EXPECT_TRUE(dispatcher.advance(at(15s), 1).starts.empty());
    EXPECT_TRUE(dispatcher.advance(at(19500ms), 1).starts.empty());
    // At its next tick, `starved` has its run skipped; the new one waits in its place.
    const auto next_tick = dispatcher.advance(at(20s), 1);
    EXPECT_TRUE(next_tick.starts.empty());
    ASSERT_EQ(next_tick.skips.size(), 1u);
    EXPECT_EQ(next_tick.skips[0].job, starved);
    EXPECT_EQ(next_tick.skips[0].reason, SkipReason::concurrency);
    EXPECT_EQ(dispatcher.queued(), 3u);

    dispatcher.ended(hog, RunEnd::answered, at(20500ms));
    const auto freed = dispatcher.advance(at(20500ms), 0);
    ASSERT_EQ(started(freed), std::vector<JobId>{newcomer});
    EXPECT_EQ(freed.starts[0].lateness, 1s);
    dispatcher.ended(newcomer, RunEnd::answered, at(20600ms));
    EXPECT_EQ(started(dispatcher.advance(at(20600ms), 0)), std::vector<JobId>{starved});
    dispatcher.ended(starved, RunEnd::answered, at(20700ms));
    const auto last = dispatcher.advance(at(20700ms), 0);
    ASSERT_EQ(started(last), std::vector<JobId>{frequent});
    EXPECT_EQ(last.starts[0].lateness, 5700ms);
}

// A run that waited so long that it is still going at its job's next tick costs that tick: the
// wait took it, not the server.
TEST(Dispatcher, ARunStartedLateAndStillGoingAtTheNextTickCountsAsConcurrency) {
    Dispatcher dispatcher(1);
    const JobId hog = dispatcher.add({.interval = 1000s, .timeout = 999s}, kStart);
    const JobId job = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart + 1s);
    EXPECT_EQ(started(dispatcher.advance(at(1s), 0)), std::vector<JobId>{hog});
    dispatcher.ended(hog, RunEnd::answered, at(8500ms));
    EXPECT_EQ(started(dispatcher.advance(at(8500ms), 0)), std::vector<JobId>{job});
    const auto next_tick = dispatcher.advance(at(11s), 1);
    ASSERT_EQ(next_tick.skips.size(), 1u);
    EXPECT_EQ(next_tick.skips[0].reason, SkipReason::concurrency);
}

TEST(Dispatcher, ADueRunStartsAtOnceWhileTheCapAllows) {
    Dispatcher dispatcher(2);
    const JobId job = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart + 1s);
    EXPECT_EQ(dispatcher.next_wakeup(), kStart + 1s);
    const auto decisions = dispatcher.advance(kStart + 1002ms, 1);
    ASSERT_EQ(decisions.starts.size(), 1u);
    EXPECT_EQ(decisions.starts[0].job, job);
    EXPECT_EQ(decisions.starts[0].lateness, 2ms);
    EXPECT_EQ(dispatcher.next_wakeup(), kStart + 11s);
}

TEST(Dispatcher, ARaisedCapStartsWaitingRuns) {
    Dispatcher dispatcher(1);
    const JobId a = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    const JobId b = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    const auto first = dispatcher.advance(kStart, 0);
    ASSERT_EQ(first.starts.size(), 1u);
    EXPECT_EQ(first.starts[0].job, a) << "equally due: the first to arrive";
    EXPECT_EQ(dispatcher.queued(), 1u);
    EXPECT_EQ(dispatcher.next_wakeup(), kStart + 10s) << "the next ticks";
    dispatcher.set_max_in_flight(2);
    const auto decisions = dispatcher.advance(kStart + 1s, 1);
    ASSERT_EQ(decisions.starts.size(), 1u);
    EXPECT_EQ(decisions.starts[0].job, b);
    EXPECT_EQ(dispatcher.queued(), 0u);
}

TEST(Dispatcher, ARunStillGoingAtTheNextTickIsAnOverlap) {
    Dispatcher dispatcher(10);
    const JobId job = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    EXPECT_EQ(dispatcher.advance(kStart, 0).starts.size(), 1u);
    const auto decisions = dispatcher.advance(kStart + 10s, 1);
    EXPECT_TRUE(decisions.starts.empty());
    ASSERT_EQ(decisions.skips.size(), 1u);
    EXPECT_EQ(decisions.skips[0].job, job);
    EXPECT_EQ(decisions.skips[0].reason, SkipReason::overlap);
}

TEST(Dispatcher, ARemovedJobLeavesTheQueueUncounted) {
    Dispatcher dispatcher(1);
    const JobId a = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    const JobId b = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    dispatcher.advance(kStart, 0);
    ASSERT_EQ(dispatcher.queued(), 1u);
    dispatcher.remove(a);
    dispatcher.remove(b);
    EXPECT_EQ(dispatcher.queued(), 0u);
    EXPECT_EQ(dispatcher.next_wakeup(), std::nullopt);
    const auto decisions = dispatcher.advance(kStart + 1h, 0);
    EXPECT_TRUE(decisions.starts.empty());
    EXPECT_TRUE(decisions.skips.empty());
    dispatcher.ended(a, RunEnd::timed_out, kStart + 1h);  // a run that outlived its job
}

// --- Single runs asked for (/probe)
// ------------------------------------------------------------------

TEST(Dispatcher, AnAskedRunStartsAtOnceWhileTheCapAllows) {
    Dispatcher dispatcher(2);
    const JobId asked = dispatcher.add_once(kStart + 1s);
    const auto decisions = dispatcher.advance(kStart + 1s, 1);
    ASSERT_EQ(decisions.starts.size(), 1u);
    EXPECT_EQ(decisions.starts[0].job, asked);
    EXPECT_EQ(dispatcher.queued(), 0u);
    EXPECT_EQ(dispatcher.next_wakeup(), std::nullopt) << "it has no schedule";
    dispatcher.ended(asked, RunEnd::answered, kStart + 2s);  // unknown by then: nothing happens
}

TEST(Dispatcher, AnAskedRunWaitsAtTheCapBehindRunsDueBeforeIt) {
    Dispatcher dispatcher(1);
    dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    const JobId b = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    ASSERT_EQ(dispatcher.advance(kStart, 0).starts.size(), 1u);
    const JobId asked = dispatcher.add_once(kStart + 1s);
    EXPECT_TRUE(dispatcher.advance(kStart + 1s, 1).starts.empty()) << "the cap is reached";
    EXPECT_EQ(dispatcher.queued(), 2u);
    const auto freed = dispatcher.advance(kStart + 2s, 0);
    ASSERT_EQ(freed.starts.size(), 1u);
    EXPECT_EQ(freed.starts[0].job, b) << "b was due first";
    const auto next = dispatcher.advance(kStart + 3s, 0);
    ASSERT_EQ(next.starts.size(), 1u);
    EXPECT_EQ(next.starts[0].job, asked);
    EXPECT_EQ(next.starts[0].lateness, 2s);
}

TEST(Dispatcher, AnAskedRunTakenBackLeavesTheQueue) {
    Dispatcher dispatcher(1);
    const JobId asked = dispatcher.add_once(kStart);
    dispatcher.remove(asked);
    EXPECT_EQ(dispatcher.queued(), 0u);
    EXPECT_TRUE(dispatcher.advance(kStart + 1s, 0).starts.empty());
}

// --- Backoff
// --------------------------------------------------------------------------------------

// Silent until 65 s, then answering.
std::optional<Clock::duration> back_at_65s(Clock::time_point started) {
    return started < kStart + 65s ? std::nullopt : std::optional<Clock::duration>(50ms);
}

// One timeout doubles the interval, no more, whatever a job's turn: a server that went silent
// once is looked at again within two intervals.
TEST(Dispatcher, OneTimeoutWaitsAtMostOneIntervalMore) {
    Simulation sim(10);
    const Dispatcher::JobSettings settings{.interval = 10s, .timeout = 3s};
    std::vector<JobId> jobs;
    jobs.reserve(4);
    for (int i = 0; i < 4; ++i) jobs.push_back(sim.add(settings, 0s, back_at_65s));
    sim.run_until(kStart + 5s);
    for (const JobId id : jobs) EXPECT_LE(sim.dispatcher().backoff(id), 10s) << id;
}

TEST(Dispatcher, TimeoutsStretchTheIntervalToFourAndTheFirstAnswerBringsItBack) {
    Simulation sim(10);
    const Dispatcher::JobSettings settings{.interval = 10s, .timeout = 3s};
    const JobId a = sim.add(settings, 0s, back_at_65s);
    const JobId b = sim.add(settings, 0s, back_at_65s);
    sim.run_until(kStart + 5s);
    // After one run that timed out, every 2 intervals: `a` takes the odd ones, `b` the even.
    EXPECT_EQ(sim.dispatcher().backoff(a), 0s);
    EXPECT_EQ(sim.dispatcher().backoff(b), 10s);
    sim.run_until(kStart + 25s);
    // After two, every 4 intervals, each on its turn.
    EXPECT_EQ(sim.dispatcher().backoff(a), 30s);
    EXPECT_EQ(sim.dispatcher().backoff(b), 30s);
    sim.run_until(kStart + 125s);
    // The servers came back at 65 s: the next run of each, within 4 intervals, sees it, and
    // brings the interval back to one.
    EXPECT_EQ(sim.starts(a),
              (std::vector<Clock::time_point>{kStart, kStart + 10s, kStart + 50s, kStart + 90s,
                                              kStart + 100s, kStart + 110s, kStart + 120s}));
    EXPECT_EQ(sim.starts(b),
              (std::vector<Clock::time_point>{kStart, kStart + 20s, kStart + 60s, kStart + 100s,
                                              kStart + 110s, kStart + 120s}));
    EXPECT_EQ(sim.dispatcher().backoff(a), 0s);
    EXPECT_EQ(sim.dispatcher().backoff(b), 0s);
    for (const JobId id : {a, b}) {
        for (const auto& outcome : sim.outcomes(id)) EXPECT_TRUE(outcome.started);
    }
}

// An agent cut off from the network: every server goes silent at once. Backing off must not
// keep them in step, or every fourth interval would carry the whole load.
TEST(Dispatcher, JobsThatTimeOutTogetherTakeTurns) {
    Simulation sim(100);
    const Dispatcher::JobSettings settings{.interval = 10s, .timeout = 3s};
    const auto offsets = even_offsets(8, settings.interval, 0s);
    std::vector<JobId> jobs;
    jobs.reserve(offsets.size());
    for (const auto offset : offsets) jobs.push_back(sim.add(settings, offset, silent()));
    sim.run_until(kStart + 200s);
    std::map<long, int> starts_by_turn;  // interval number modulo 4 -> starts
    for (const JobId id : jobs) {
        const auto starts = sim.starts(id);
        for (std::size_t i = 1; i < starts.size(); ++i) {
            EXPECT_LE(starts[i] - starts[i - 1], 4 * settings.interval) << "job " << id;
        }
        for (const auto at : starts) {
            if (at >= kStart + 120s) ++starts_by_turn[((at - kStart) / settings.interval) % 4];
        }
    }
    EXPECT_EQ(starts_by_turn, (std::map<long, int>{{0, 4}, {1, 4}, {2, 4}, {3, 4}}));
}

TEST(Dispatcher, AStoppedRunLeavesTheBackoffAlone) {
    Dispatcher dispatcher(10);
    const JobId job = dispatcher.add({.interval = 10s, .timeout = 3s}, kStart);
    for (int run = 0; run < 2; ++run) {
        const auto at = *dispatcher.next_wakeup();
        ASSERT_EQ(dispatcher.advance(at, 0).starts.size(), 1u);
        dispatcher.ended(job, RunEnd::timed_out, at + 3s);
    }
    const auto backoff = dispatcher.backoff(job);
    ASSERT_EQ(backoff, 30s);
    const auto next = *dispatcher.next_wakeup();
    ASSERT_EQ(dispatcher.advance(next, 0).starts.size(), 1u);
    dispatcher.ended(job, RunEnd::stopped, next + 1s);  // a reload or a shutdown stopped it
    EXPECT_EQ(dispatcher.backoff(job), backoff);
    EXPECT_EQ(dispatcher.next_wakeup(), next + 40s);
}

}  // namespace
}  // namespace mailcanary
