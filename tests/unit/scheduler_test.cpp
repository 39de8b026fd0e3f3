#include "agent/scheduler.hpp"

#include <utility>

#include <gtest/gtest.h>

#include <map>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <regex>
#include "support/exposition.hpp"

namespace mailcanary {
namespace {

using test::value_of;

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --- TickPlan: pure, with made-up times -------------------------------------------------------

TEST(TickPlan, KeepsAFixedRateWithoutDrift) {
    const Clock::time_point start{};
    TickPlan plan(start + 3s, 10s);
    EXPECT_EQ(plan.next(), start + 3s);
    auto tick = plan.fire(start + 3s + 2ms);  // handled 2 ms late
    EXPECT_EQ(tick.lateness, 2ms);
    EXPECT_EQ(tick.missed, 0u);
    EXPECT_EQ(plan.next(), start + 13s);  // not 13.002 s: lateness does not accumulate
}

TEST(TickPlan, CountsIntervalsThatPassedUnseen) {
    const Clock::time_point start{};
    TickPlan plan(start, 10s);
    const auto tick = plan.fire(start + 35s);  // the loop was stalled for 35 s
    EXPECT_EQ(tick.lateness, 35s);
    EXPECT_EQ(tick.missed, 3u);  // 10 s, 20 s and 30 s never ran
    EXPECT_EQ(plan.next(), start + 40s);
}

TEST(TickPlan, ATickExactlyOneIntervalLateIsOneMissed) {
    const Clock::time_point start{};
    TickPlan plan(start, 10s);
    const auto tick = plan.fire(start + 10s);
    EXPECT_EQ(tick.missed, 1u);
    EXPECT_EQ(plan.next(), start + 20s);
}

// --- Scheduler: real timers with short intervals, and fake probes ------------------------------

struct ProbeLog {
    std::vector<std::pair<std::string, Clock::time_point>> starts;
    int cancelled = 0;
    int silent_at_once = 0;
    int most_silent_at_once = 0;
};
ProbeLog g_log;

asio::awaitable<Outcome> instant_probe(ProbeRun run) {
    g_log.starts.emplace_back(run.target.config.instance_key(), Clock::now());
    co_return Outcome{};
}

// Takes 120 ms whatever its deadline says, like a server that answers slowly: the run outlasts
// its interval.
asio::awaitable<Outcome> slow_probe(ProbeRun run) {
    g_log.starts.emplace_back(run.target.config.name, Clock::now());
    asio::steady_timer timer(co_await asio::this_coro::executor, 120ms);
    run.stop.on_request([&timer] { timer.cancel(); });
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    run.stop.clear();
    if (run.stop.requested()) {
        ++g_log.cancelled;
        co_return Outcome::stopped();
    }
    co_return Outcome{};
}

// A server that accepts and never speaks: the run holds its slot until its deadline.
asio::awaitable<Outcome> silent_probe(ProbeRun run) {
    g_log.starts.emplace_back(run.target.config.name, Clock::now());
    g_log.most_silent_at_once = std::max(g_log.most_silent_at_once, ++g_log.silent_at_once);
    asio::steady_timer timer(co_await asio::this_coro::executor, run.deadline);
    run.stop.on_request([&timer] { timer.cancel(); });
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    run.stop.clear();
    --g_log.silent_at_once;
    if (run.stop.requested()) co_return Outcome::stopped();
    co_return Outcome::failed(FailureReason::banner_timeout, "silent");
}

// A probe kind that runs one of the functions above.
class TestProbe final : public ProbeKind {
  public:
    using Function = asio::awaitable<Outcome> (*)(ProbeRun);
    TestProbe(std::string_view name, Function function) : name_(name), function_(function) {}
    std::string_view name() const override { return name_; }
    std::span<const Phase> phases() const override { return {}; }
    std::span<const FailureReason> reasons() const override { return {}; }
    asio::awaitable<Outcome> run(ProbeRun run) const override { return function_(run); }

  private:
    std::string_view name_;
    Function function_;
};

const TestProbe kInstantProbe{"instant", &instant_probe};
const TestProbe kSlowProbe{"slow", &slow_probe};
const TestProbe kSilentProbe{"silent", &silent_probe};

const ProbeKind* test_lookup(std::string_view name) {
    for (const TestProbe* kind : {&kInstantProbe, &kSlowProbe, &kSilentProbe}) {
        if (kind->name() == name) return kind;
    }
    return nullptr;
}

std::shared_ptr<const CompiledTarget> target(std::string name, std::string probe,
                                             std::chrono::milliseconds interval) {
    TargetConfig config;
    config.name = std::move(name);
    config.host = "127.0.0.1";
    config.interval = interval;
    config.timeout = interval / 2;
    config.probes = {std::move(probe)};
    return std::make_shared<const CompiledTarget>(config);
}

class SchedulerTest : public testing::Test {
  protected:
    SchedulerTest() { g_log = {}; }

    MetricsConfig metrics_config_{{0.01, 0.1, 1}, true};
    asio::io_context io_;
    Metrics metrics_{metrics_config_};
    ResultStore results_;
    ProbeResources resources_{io_.get_executor(), metrics_.registry(), {}};
    Scheduler scheduler_{io_.get_executor(),
                         metrics_,
                         results_,
                         resources_,
                         Scheduler::Options{.max_in_flight = 100, .seed = 42},
                         test_lookup};
};

TEST_F(SchedulerTest, RunsEachTargetOnItsOwnInterval) {
    scheduler_.apply({target("a", "instant", 50ms), target("b", "instant", 100ms)});
    io_.run_for(520ms);
    const auto count = [](const std::string& name) {
        return static_cast<double>(
            std::count_if(g_log.starts.begin(), g_log.starts.end(),
                          [&](const auto& start) { return start.first == name; }));
    };
    // First run within one interval, then one per interval: 10 (±1) and 5 (±1).
    EXPECT_NEAR(count("a"), 10, 1);
    EXPECT_NEAR(count("b"), 5, 1);
    const auto text = metrics_.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{probe="instant",target="a"})"), 1);
    EXPECT_NEAR(value_of(text, R"(mailcanary_probe_runs_total{probe="instant",target="a"})"), 10,
                1);
    ASSERT_NE(results_.find({"a", "instant"}), nullptr);
}

TEST_F(SchedulerTest, SpreadsFirstRunsEvenlyOverTheInterval) {
    std::vector<std::shared_ptr<const CompiledTarget>> targets;
    targets.reserve(40);
    for (int i = 0; i < 40; ++i)
        targets.push_back(target("t" + std::to_string(i), "instant", 400ms));
    const auto applied = Clock::now();
    scheduler_.apply(targets);
    io_.run_for(600ms);  // every first run, and some second ones
    std::map<std::string, Clock::duration> first;
    for (const auto& [name, at] : g_log.starts) first.emplace(name, at - applied);
    ASSERT_EQ(first.size(), 40u);
    std::vector<Clock::duration> offsets;
    offsets.reserve(first.size());
    for (const auto& [name, offset] : first) offsets.push_back(offset);
    std::sort(offsets.begin(), offsets.end());
    EXPECT_LT(offsets.front(), 20ms);
    EXPECT_GT(offsets.back(), 380ms);
    EXPECT_LT(offsets.back(), 420ms);
    // 10 ms apart. Random offsets would leave a largest gap of about 40 ms, and a herd 0.
    for (std::size_t i = 1; i < offsets.size(); ++i) {
        EXPECT_LT(offsets[i] - offsets[i - 1], 30ms) << "between runs " << i - 1 << " and " << i;
    }
}

// The two instances of an `ip = "both"` target share one slot of the interval: each round
// probes v4 and v6 together (a comparison of the same moment), while the other targets keep
// their own slots apart.
TEST_F(SchedulerTest, BothFamiliesOfATargetRunInTheSameRound) {
    std::vector<TargetConfig> configs;
    configs.reserve(10);
    for (int i = 0; i < 10; ++i)
        configs.push_back(target("t" + std::to_string(i), "instant", 400ms)->config);
    configs[4].ip = IpChoice::both;
    std::vector<std::shared_ptr<const CompiledTarget>> targets;
    for (auto& instance : expand_instances(configs))
        targets.push_back(std::make_shared<const CompiledTarget>(std::move(instance)));
    ASSERT_EQ(targets.size(), 11u);
    scheduler_.apply(targets);
    io_.run_for(1000ms);  // two rounds and a half
    std::map<std::string, std::vector<Clock::time_point>> runs;
    for (const auto& [key, at] : g_log.starts) runs[key].push_back(at);
    const auto& v4 = runs[R"(t4{ip_family="v4"})"];
    const auto& v6 = runs[R"(t4{ip_family="v6"})"];
    ASSERT_GE(v4.size(), 2u);
    ASSERT_EQ(v4.size(), v6.size());
    for (std::size_t round = 0; round < v4.size(); ++round) {
        const auto apart = v4[round] > v6[round] ? v4[round] - v6[round] : v6[round] - v4[round];
        // Started by the same dispatch: microseconds, where slots are 40 ms apart.
        EXPECT_LT(apart, 5ms) << "round " << round;
    }
    const auto& neighbour = runs["t3"];
    ASSERT_FALSE(neighbour.empty());
    EXPECT_GT(v4.front() > neighbour.front() ? v4.front() - neighbour.front()
                                             : neighbour.front() - v4.front(),
              20ms);
    // Ten slots for eleven instances: the target counts once.
    EXPECT_EQ(value_of(metrics_.serialize(), "mailcanary_targets"), 10);
    // A reload to `ip = "v6"` drops the v4 instance and its results.
    configs[4].ip = IpChoice::v6;
    targets.clear();
    for (auto& instance : expand_instances(configs))
        targets.push_back(std::make_shared<const CompiledTarget>(std::move(instance)));
    scheduler_.apply(targets);
    EXPECT_EQ(results_.find({R"(t4{ip_family="v4"})", "instant"}), nullptr);
    const auto text = metrics_.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{ip_family="v4",probe="instant",)"
                             R"(target="t4"})"),
              -1);
    EXPECT_GE(value_of(text, R"(mailcanary_probe_runs_total{ip_family="v6",probe="instant",)"
                             R"(target="t4"})"),
              2);
}

TEST(EvenOffsets, AreIntervalOverCountApartFromThePhase) {
    EXPECT_EQ(even_offsets(4, 1000ms, 30ms),
              (std::vector<Clock::duration>{30ms, 280ms, 530ms, 780ms}));
    EXPECT_EQ(even_offsets(1, 1000ms, 0ms), (std::vector<Clock::duration>{0ms}));
    EXPECT_TRUE(even_offsets(0, 1000ms, 0ms).empty());
    const auto many = even_offsets(3, 1s, 0ms);  // not a whole number of nanoseconds apart
    EXPECT_EQ(many[1], Clock::duration(333'333'333));
    EXPECT_EQ(many[2], Clock::duration(666'666'666));
}

TEST_F(SchedulerTest, NeverOverlapsARunAndCountsTheSkips) {
    scheduler_.apply({target("slow", "slow", 50ms)});
    io_.run_for(530ms);
    // Each run takes 120 ms: of the ~10 ticks, only every third starts a run.
    EXPECT_NEAR(static_cast<double>(g_log.starts.size()), 4, 1);
    for (std::size_t i = 1; i < g_log.starts.size(); ++i) {
        EXPECT_GE(g_log.starts[i].second - g_log.starts[i - 1].second, 120ms);
    }
    const auto text = metrics_.serialize();
    EXPECT_GE(
        value_of(text,
                 R"(mailcanary_probe_skipped_total{probe="slow",reason="overlap",target="slow"})"),
        4);
    EXPECT_NEAR(value_of(text, R"(mailcanary_probe_runs_total{probe="slow",target="slow"})"),
                static_cast<double>(g_log.starts.size()), 1);
}

TEST_F(SchedulerTest, ASlowTargetDoesNotDelayTheOthers) {
    scheduler_.apply({target("slow", "slow", 50ms), target("fast", "instant", 50ms)});
    io_.run_for(520ms);
    std::vector<Clock::time_point> fast;
    for (const auto& [name, at] : g_log.starts) {
        if (name == "fast") fast.push_back(at);
    }
    ASSERT_NEAR(static_cast<double>(fast.size()), 10, 1);
    for (std::size_t i = 1; i < fast.size(); ++i) {
        const std::chrono::duration<double, std::milli> gap = fast[i] - fast[i - 1];
        EXPECT_NEAR(gap.count(), 50, 15);
    }
}

TEST_F(SchedulerTest, GlobalCapSkipsRunsBeyondIt) {
    scheduler_.set_max_in_flight(1);
    scheduler_.apply({target("s1", "slow", 50ms), target("s2", "slow", 50ms)});
    io_.run_for(400ms);
    EXPECT_LE(scheduler_.in_flight(), 1u);
    const auto text = metrics_.serialize();
    const double concurrency_skips =
        value_of(
            text,
            R"(mailcanary_probe_skipped_total{probe="slow",reason="concurrency",target="s1"})") +
        value_of(
            text,
            R"(mailcanary_probe_skipped_total{probe="slow",reason="concurrency",target="s2"})");
    EXPECT_GE(concurrency_skips, 1);
}

// The cap reached by servers that never speak (the dispatcher's tests cover the policy with
// made-up times; this, its wiring to timers, runs and series): every target still runs, the
// cap holds, skips are counted, silent targets back off.
TEST_F(SchedulerTest, AtTheCapEveryTargetStillRunsAndSilentOnesBackOff) {
    scheduler_.set_max_in_flight(4);
    std::vector<std::shared_ptr<const CompiledTarget>> targets;
    for (int i = 0; i < 20; ++i) {
        TargetConfig config;
        config.name = "t" + std::to_string(i);
        config.host = "127.0.0.1";
        config.interval = 200ms;
        config.timeout = 120ms;  // 16 silent: 16 x 120 ms every 200 ms, 2.4 times the 4 slots
        config.probes = {i % 5 == 4 ? "instant" : "silent"};
        targets.push_back(std::make_shared<const CompiledTarget>(config));
    }
    const auto applied = Clock::now();
    scheduler_.apply(targets);
    // The third run of each silent target has ended by then, however their turns fell.
    io_.run_for(2600ms);

    EXPECT_LE(g_log.most_silent_at_once, 4);
    std::map<std::string, std::vector<Clock::time_point>> starts;
    for (const auto& [name, at] : g_log.starts) starts[name].push_back(at);
    const auto text = metrics_.serialize();
    double concurrency_skips = 0;
    for (const auto& target : targets) {
        const std::string& name = target->config.name;
        const std::string& probe = target->config.probes[0];
        const std::string labels = "probe=\"" + probe + "\",target=\"" + name + "\"";
        ASSERT_FALSE(starts[name].empty()) << name;
        // Its first tick comes within an interval, its first run within two ticks of it (and
        // some slack for a busy machine).
        EXPECT_LT(starts[name].front() - applied, 3 * 200ms + 50ms) << name;
        EXPECT_GE(value_of(text, "mailcanary_probe_runs_total{" + labels + "}"), 1) << name;
        concurrency_skips += std::max(
            0.0,
            value_of(text, "mailcanary_probe_skipped_total{" + labels.substr(0, labels.find(',')) +
                               ",reason=\"concurrency\"" + labels.substr(labels.find(',')) + "}"));
        const double backoff = value_of(text, "mailcanary_probe_backoff_seconds{" + labels + "}");
        if (probe == "silent") {
            EXPECT_GE(starts[name].size(), 3u) << name;
            EXPECT_DOUBLE_EQ(backoff, 0.6) << name << ": every 4 intervals by now";
        } else {
            EXPECT_GE(starts[name].size(), 8u) << name;
            EXPECT_EQ(backoff, 0) << name;
        }
    }
    EXPECT_GT(concurrency_skips, 0) << "the load was meant to exceed the cap at first";
    EXPECT_EQ(value_of(text, "mailcanary_probes_in_flight_limit"), 4);
}

TEST_F(SchedulerTest, ReloadKeepsUnchangedTargetsAndDropsRemovedOnes) {
    auto a = target("a", "instant", 50ms);
    scheduler_.apply({a, target("b", "instant", 50ms)});
    io_.run_for(260ms);
    const auto before = metrics_.serialize();
    const double runs_a =
        value_of(before, R"(mailcanary_probe_runs_total{probe="instant",target="a"})");
    ASSERT_GE(runs_a, 3);
    ASSERT_GE(value_of(before, R"(mailcanary_probe_runs_total{probe="instant",target="b"})"), 3);

    // The same settings for "a" in a fresh object, as a reload produces; "b" is gone.
    scheduler_.apply({target("a", "instant", 50ms)});
    const auto after_apply = metrics_.serialize();
    EXPECT_EQ(value_of(after_apply, R"(mailcanary_probe_runs_total{probe="instant",target="a"})"),
              runs_a);
    EXPECT_EQ(after_apply.find("target=\"b\""), std::string::npos);
    EXPECT_EQ(results_.find({"b", "instant"}), nullptr);

    io_.run_for(200ms);
    EXPECT_GT(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_runs_total{probe="instant",target="a"})"),
              runs_a);
}

// The one instance of an `mx` target without MX host: every run fails with the instance's
// failure (mx_none, dns), without running the probe.
TEST_F(SchedulerTest, AnUnresolvedInstanceFailsItsRunsWithItsReason) {
    TargetConfig config = target("nomx", "instant", 50ms)->config;
    config.host.clear();
    config.mx = "nomx.example.net";
    auto unresolved = std::make_shared<CompiledTarget>(config);
    unresolved->unresolved = Failure(FailureReason::mx_none,
                                     "nomx.example.net: no MX record (NODATA from 192.0.2.53:53)");
    scheduler_.apply({unresolved});
    io_.run_for(130ms);
    EXPECT_TRUE(g_log.starts.empty()) << "the probe ran";
    const auto text = metrics_.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{probe="instant",target="nomx"})"), 0);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="instant",reason="mx_none",target="nomx"})"),
        2);
    const auto* result = results_.find({"nomx", "instant"});
    ASSERT_NE(result, nullptr);
    ASSERT_TRUE(result->last);
    EXPECT_EQ(result->last->outcome.detail,
              "nomx.example.net: no MX record (NODATA from 192.0.2.53:53)");
}

// The instance of an `mx` target (interval 100 s) whose domain has no MX host to probe: each
// run fails with `dns` and `detail`.
std::shared_ptr<CompiledTarget> stand_in(const std::string& name, const std::string& detail) {
    TargetConfig config = target(name, "instant", 100s)->config;
    config.host.clear();
    config.mx = "example.net";
    auto made = std::make_shared<CompiledTarget>(config);
    made->unresolved = Failure(FailureReason::dns, detail);
    return made;
}

// It stands in for an `mx` target's hosts when the domain has none to probe: its first run does
// not wait for a random point of the interval, which would leave the outage without a value.
TEST_F(SchedulerTest, AnUnresolvedInstanceRunsAtOnce) {
    scheduler_.apply({stand_in("nomx", "NXDOMAIN from 192.0.2.53:53")});
    io_.run_for(50ms);
    EXPECT_EQ(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_success{probe="instant",target="nomx"})"),
              0);
}

// An mx target's hosts taking over from its failing stand-in (the domain has MX hosts again)
// run at once too: the target's outage keeps a value, so a firing alert neither resolves nor
// starts its `for:` over. A host that replaces no failing instance keeps its place.
TEST_F(SchedulerTest, AnInstanceTakingOverFromAFailingOneRunsAtOnce) {
    const auto failing = stand_in("domain", "SERVFAIL from 192.0.2.53:53");
    scheduler_.apply({failing});
    io_.run_for(50ms);
    ASSERT_EQ(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_success{probe="instant",target="domain"})"),
              0);

    TargetConfig config = failing->config;
    config.host = "127.0.0.1";
    config.instance_labels = {{"mx_host", "mx1.example.net"}};
    scheduler_.apply({std::make_shared<CompiledTarget>(config)});
    io_.run_for(50ms);
    EXPECT_EQ(
        value_of(
            metrics_.serialize(),
            R"(mailcanary_probe_success{mx_host="mx1.example.net",probe="instant",target="domain"})"),
        1);

    // Another host joining while the first works: its place in the interval, not now.
    auto second = config;
    second.instance_labels = {{"mx_host", "mx2.example.net"}};
    scheduler_.apply(
        {std::make_shared<CompiledTarget>(config), std::make_shared<CompiledTarget>(second)});
    io_.run_for(50ms);
    EXPECT_EQ(
        value_of(
            metrics_.serialize(),
            R"(mailcanary_probe_success{mx_host="mx2.example.net",probe="instant",target="domain"})"),
        -1);
}

TEST_F(SchedulerTest, RemovingOneProbeKeepsTheOtherProbesResults) {
    TargetConfig both;
    both.name = "mx";
    both.host = "127.0.0.1";
    both.interval = 50ms;
    both.timeout = 25ms;
    both.probes = {"instant", "slow"};
    scheduler_.apply({std::make_shared<const CompiledTarget>(both)});
    io_.run_for(300ms);
    ASSERT_NE(results_.find({"mx", "instant"}), nullptr);
    both.probes = {"instant"};
    scheduler_.apply({std::make_shared<const CompiledTarget>(both)});
    EXPECT_NE(results_.find({"mx", "instant"}), nullptr) << "the failure that paged someone stays";
    EXPECT_EQ(results_.find({"mx", "slow"}), nullptr);
}

TEST_F(SchedulerTest, ChangedTargetKeepsItsCounters) {
    scheduler_.apply({target("a", "instant", 50ms)});
    io_.run_for(200ms);
    const double runs = value_of(metrics_.serialize(),
                                 R"(mailcanary_probe_runs_total{probe="instant",target="a"})");
    ASSERT_GE(runs, 2);
    scheduler_.apply({target("a", "instant", 60ms)});
    EXPECT_EQ(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_runs_total{probe="instant",target="a"})"),
              runs);
    io_.run_for(200ms);
    EXPECT_GT(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_runs_total{probe="instant",target="a"})"),
              runs);
}

TEST_F(SchedulerTest, StopCancelsRunsInFlight) {
    scheduler_.apply({target("slow", "slow", 100ms)});
    // Run until the first run is under way, then stop.
    while (g_log.starts.empty()) io_.run_one_for(200ms);
    EXPECT_EQ(scheduler_.in_flight(), 1u);
    scheduler_.stop();
    const auto stopped = Clock::now();
    io_.run();  // returns once nothing is left: no job loop, no run
    EXPECT_LT(Clock::now() - stopped, 50ms);
    EXPECT_EQ(g_log.cancelled, 1);
    EXPECT_EQ(scheduler_.in_flight(), 0u);
    EXPECT_EQ(value_of(metrics_.serialize(),
                       R"(mailcanary_probe_runs_total{probe="slow",target="slow"})"),
              -1);
}

// --- Runs asked for now (/probe)

// Runs `run_now` on the loop and keeps what it gave.
struct AskedOnce {
    std::optional<Scheduler::AskedRun> run;
    Clock::time_point ended;
};

void ask(asio::io_context& io, Scheduler& scheduler,
         const std::shared_ptr<const CompiledTarget>& target, const ProbeKind& probe,
         Clock::duration timeout, AskedOnce& into) {
    asio::co_spawn(
        io,
        [&scheduler, target, &probe, timeout, &into]() -> asio::awaitable<void> {
            into.run = co_await scheduler.run_now(target, probe, Clock::now() + timeout);
            into.ended = Clock::now();
        },
        asio::detached);
}

TEST_F(SchedulerTest, AnAskedRunRunsTheProbeAndLeavesNoSeries) {
    AskedOnce asked;
    ask(io_, scheduler_, target("adhoc", "instant", 1s), kInstantProbe, 1s, asked);
    io_.run_for(100ms);
    ASSERT_TRUE(asked.run);
    EXPECT_TRUE(asked.run->result.outcome.success());
    ASSERT_EQ(g_log.starts.size(), 1u);
    EXPECT_EQ(scheduler_.in_flight(), 0u) << "its slot was given back";
    EXPECT_EQ(metrics_.serialize().find("adhoc"), std::string::npos);
    EXPECT_TRUE(results_.all().empty());
}

TEST_F(SchedulerTest, AnAskedRunWaitsForASlotUnderTheCap) {
    scheduler_.set_max_in_flight(1);
    AskedOnce first;
    AskedOnce second;
    ask(io_, scheduler_, target("a", "slow", 1s), kSlowProbe, 1s, first);
    ask(io_, scheduler_, target("b", "slow", 1s), kSlowProbe, 1s, second);
    io_.run_for(60ms);
    EXPECT_EQ(g_log.starts.size(), 1u) << "the second waits while the first holds the slot";
    EXPECT_EQ(scheduler_.queued(), 1u);
    io_.run_for(400ms);
    ASSERT_TRUE(first.run && second.run);
    EXPECT_TRUE(second.run->result.outcome.success());
    ASSERT_EQ(g_log.starts.size(), 2u);
    EXPECT_GE(g_log.starts[1].second - g_log.starts[0].second, 110ms);
}

TEST_F(SchedulerTest, AnAskedRunThatGetsNoSlotByItsDeadlineTimesOut) {
    scheduler_.set_max_in_flight(1);
    AskedOnce holder;
    AskedOnce late;
    ask(io_, scheduler_, target("a", "slow", 1s), kSlowProbe, 1s, holder);
    ask(io_, scheduler_, target("b", "instant", 1s), kInstantProbe, 40ms, late);
    io_.run_for(80ms);
    ASSERT_TRUE(late.run);
    ASSERT_TRUE(late.run->result.outcome.failure);
    EXPECT_EQ(*late.run->result.outcome.failure, FailureReason::timeout);
    EXPECT_EQ(scheduler_.queued(), 0u) << "taken back from the queue";
    io_.run_for(200ms);
    EXPECT_EQ(g_log.starts.size(), 1u) << "it never ran";
}

TEST_F(SchedulerTest, StopEndsAskedRunsRunningAndWaiting) {
    scheduler_.set_max_in_flight(1);
    AskedOnce running;
    AskedOnce waiting;
    ask(io_, scheduler_, target("a", "slow", 1s), kSlowProbe, 1s, running);
    ask(io_, scheduler_, target("b", "slow", 1s), kSlowProbe, 1s, waiting);
    io_.run_for(20ms);
    scheduler_.stop();
    io_.run_for(50ms);
    ASSERT_TRUE(running.run && waiting.run);
    EXPECT_TRUE(running.run->result.outcome.cancelled);
    EXPECT_TRUE(waiting.run->result.outcome.cancelled);
    EXPECT_EQ(g_log.cancelled, 1);
}

TEST(SchedulerLifetime, ARunInFlightOutlivesTheScheduler) {
    g_log = {};
    asio::io_context io;
    MetricsConfig config{{0.1}, true};
    Metrics metrics(config);
    ResultStore results;
    ProbeResources resources(io.get_executor(), metrics.registry(), {});
    {
        Scheduler scheduler(io.get_executor(), metrics, results, resources,
                            Scheduler::Options{.max_in_flight = 10, .seed = 1}, test_lookup);
        scheduler.apply({target("slow", "slow", 100ms)});
        while (g_log.starts.empty()) io.run_one_for(200ms);
    }
    // The run is asked to stop and resumes after the scheduler is gone (ASan would see a use of
    // freed memory here if it touched the scheduler).
    io.run();
    EXPECT_EQ(g_log.cancelled, 1);
}

TEST_F(SchedulerTest, RecordsLateness) {
    scheduler_.apply({target("a", "instant", 20ms)});
    io_.run_for(210ms);
    const auto text = metrics_.serialize();
    EXPECT_GE(value_of(text, "mailcanary_schedule_lateness_seconds_count"), 9);
    // Nothing else is running: every run starts well within 50 ms of its planned time.
    EXPECT_EQ(value_of(text, R"(mailcanary_schedule_lateness_seconds_bucket{le="0.05"})"),
              value_of(text, "mailcanary_schedule_lateness_seconds_count"));
}

}  // namespace
}  // namespace mailcanary
