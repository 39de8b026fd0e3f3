#include "common/run_group.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A run that stays in the group until asked to stop (or until `member` is reset by the test).
struct FakeRun {
    FakeRun(RunGroup& group, const void* owner) {
        member.emplace(group, owner, stop);
        stop.on_request([this] { member.reset(); });
    }
    StopSignal stop;
    std::optional<RunGroup::Member> member;
};

TEST(RunGroup, CountsRunsAndThoseHoldingASlot) {
    asio::io_context io;
    RunGroup group(io.get_executor());
    const int job_a = 0;
    const int job_b = 0;
    FakeRun first(group, &job_a);
    FakeRun second(group, &job_a);
    FakeRun third(group, &job_b);
    EXPECT_EQ(group.size(), 3u);
    EXPECT_EQ(group.slots(), 3u);
    second.member->release_slot();
    second.member->release_slot();  // once only
    EXPECT_EQ(group.slots(), 2u);
    EXPECT_EQ(group.size(), 3u) << "a run that only waits is still in flight";
    second.member.reset();
    EXPECT_EQ(group.slots(), 2u);
    EXPECT_EQ(group.size(), 2u);
}

TEST(RunGroup, StopsTheRunsOfOneOwnerOrAll) {
    asio::io_context io;
    RunGroup group(io.get_executor());
    const int job_a = 0;
    const int job_b = 0;
    FakeRun a1(group, &job_a);
    FakeRun a2(group, &job_a);
    FakeRun b(group, &job_b);
    group.stop(&job_a);
    EXPECT_TRUE(a1.stop.requested());
    EXPECT_TRUE(a2.stop.requested());
    EXPECT_FALSE(b.stop.requested());
    EXPECT_EQ(group.size(), 1u);
    group.stop();
    EXPECT_TRUE(b.stop.requested());
    EXPECT_EQ(group.size(), 0u);
}

// Waits in a coroutine and reports when the wait ended and what it said.
struct Waiter {
    std::optional<bool> all_ended;
    Clock::time_point ended_at;
};

void wait_for_empty(asio::io_context& io, RunGroup& group, Clock::duration budget, Waiter& waiter) {
    asio::co_spawn(
        io,
        [&group, &waiter, deadline = Clock::now() + budget]() -> asio::awaitable<void> {
            waiter.all_ended = co_await group.wait_until_empty(deadline);
            waiter.ended_at = Clock::now();
        },
        asio::detached);
}

TEST(RunGroup, AWaitEndsWhenTheLastRunEndsNotAtTheDeadline) {
    asio::io_context io;
    RunGroup group(io.get_executor());
    const int job = 0;
    FakeRun run(group, &job);
    asio::steady_timer ends(io, 50ms);
    ends.async_wait([&](boost::system::error_code) { run.member.reset(); });
    Waiter waiter;
    const auto started = Clock::now();
    wait_for_empty(io, group, 5s, waiter);
    io.run();
    ASSERT_TRUE(waiter.all_ended.has_value());
    EXPECT_TRUE(*waiter.all_ended);
    EXPECT_GE(waiter.ended_at - started, 45ms);
    EXPECT_LT(waiter.ended_at - started, 1s) << "no polling interval, no waiting out the budget";
}

TEST(RunGroup, AWaitGivesUpAtTheDeadlineWhileARunGoesOn) {
    asio::io_context io;
    RunGroup group(io.get_executor());
    const int job = 0;
    FakeRun stuck(group, &job);
    Waiter waiter;
    const auto started = Clock::now();
    wait_for_empty(io, group, 80ms, waiter);
    io.run();
    ASSERT_TRUE(waiter.all_ended.has_value());
    EXPECT_FALSE(*waiter.all_ended);
    EXPECT_GE(waiter.ended_at - started, 75ms);
    EXPECT_EQ(group.size(), 1u);
}

TEST(RunGroup, AWaitOnAnEmptyGroupEndsAtOnce) {
    asio::io_context io;
    RunGroup group(io.get_executor());
    Waiter waiter;
    wait_for_empty(io, group, 5s, waiter);
    io.run_for(1s);
    ASSERT_TRUE(waiter.all_ended.has_value());
    EXPECT_TRUE(*waiter.all_ended);
}

}  // namespace
}  // namespace mailcanary
