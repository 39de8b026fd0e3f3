// The bookkeeping of a mailbox's probe messages, with made-up times.
#include "probes/awaited_messages.hpp"

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

const Clock::time_point kStart{std::chrono::hours(1000)};
const SystemClock::time_point kNow = SystemClock::from_time_t(1'800'000'000);
constexpr Duration kAgeLimit = std::chrono::minutes(2);

Arrival in_inbox(std::uint32_t uid) { return Arrival{"INBOX", false, kStart + 1s, uid, "h"}; }

TEST(AwaitedMessages, AnAwaitedMessageIsRecordedForItsRunAndCountsPerTarget) {
    AwaitedMessages messages;
    messages.expect("t1", "mx", kStart);
    messages.expect("t2", "mx", kStart);
    messages.expect("t3", "other", kStart);
    EXPECT_EQ(messages.pending_for("mx"), 2u);
    EXPECT_EQ(messages.pending_for("other"), 1u);
    EXPECT_EQ(messages.arrival("t1"), nullptr) << "not seen yet";

    const auto found = messages.classify("t1", in_inbox(7), kNow - 1s, kNow, kAgeLimit);
    EXPECT_EQ(found.found, AwaitedMessages::Found::awaited);
    EXPECT_EQ(found.target, "mx");
    ASSERT_NE(messages.arrival("t1"), nullptr);
    EXPECT_EQ(messages.arrival("t1")->uid, 7u);

    EXPECT_EQ(messages.finish("t1"), "mx");
    EXPECT_FALSE(messages.awaited("t1"));
    EXPECT_EQ(messages.pending_for("mx"), 1u);
    // Done with it: found again (a copy left behind), it is a young stranger, not a late one.
    EXPECT_EQ(messages.classify("t1", in_inbox(7), kNow - 1s, kNow, kAgeLimit).found,
              AwaitedMessages::Found::too_young);
}

TEST(AwaitedMessages, AMessageGivenUpAsLostIsLateWhenItComes) {
    AwaitedMessages messages;
    messages.expect("t1", "mx", kStart);
    EXPECT_EQ(messages.give_up_as_lost("t1"), "mx");
    EXPECT_EQ(messages.pending_for("mx"), 0u);
    const auto found = messages.classify("t1", in_inbox(9), kNow - 10min, kNow, kAgeLimit);
    EXPECT_EQ(found.found, AwaitedMessages::Found::late);
    EXPECT_EQ(found.target, "mx");
    // Counted once: found again, it is an old leftover.
    EXPECT_EQ(messages.classify("t1", in_inbox(9), kNow - 10min, kNow, kAgeLimit).found,
              AwaitedMessages::Found::leftover);
}

TEST(AwaitedMessages, AnAbandonedMessageIsALeftoverAtOnceAStrangersOnlyWhenOld) {
    AwaitedMessages messages;
    messages.expect("mine", "mx", kStart);
    EXPECT_EQ(messages.abandon("mine"), "mx");
    EXPECT_EQ(messages.abandon("mine"), std::nullopt) << "once";
    EXPECT_EQ(messages.classify("mine", in_inbox(1), kNow - 1s, kNow, kAgeLimit).found,
              AwaitedMessages::Found::leftover);
    // Signed with our secret but not this process's: a twin agent's run may still wait for it.
    EXPECT_EQ(messages.classify("twin", in_inbox(2), kNow - 1min, kNow, kAgeLimit).found,
              AwaitedMessages::Found::too_young);
    EXPECT_EQ(messages.classify("twin", in_inbox(2), kNow - 2min - 1s, kNow, kAgeLimit).found,
              AwaitedMessages::Found::leftover);
    EXPECT_EQ(messages.classify("undated", in_inbox(3), std::nullopt, kNow, kAgeLimit).found,
              AwaitedMessages::Found::too_young)
        << "no INTERNALDATE: never old enough to take";
}

TEST(AwaitedMessages, RemembersABoundedNumberOfGivenUpTokens) {
    AwaitedMessages messages;
    const auto count = AwaitedMessages::kMaxTokensRemembered + 1;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string token = "t" + std::to_string(i);
        messages.expect(token, "mx", kStart);
        messages.give_up_as_lost(token);
    }
    // The oldest was forgotten: it comes back as a (recent) stranger, the newest as late.
    EXPECT_EQ(messages.classify("t0", in_inbox(1), kNow, kNow, kAgeLimit).found,
              AwaitedMessages::Found::too_young);
    EXPECT_EQ(messages.classify("t" + std::to_string(count - 1), in_inbox(2), kNow, kNow, kAgeLimit)
                  .found,
              AwaitedMessages::Found::late);
}

TEST(AwaitedMessages, PromptChecksFollowTheOldestUnseenMessage) {
    AwaitedMessages messages;
    EXPECT_EQ(messages.prompt_check_interval(kStart, 1s), std::nullopt) << "nothing awaited";
    messages.expect("old", "mx", kStart);
    messages.expect("new", "mx", kStart + 9s);
    // 1/20 of the oldest's 10 s in flight.
    EXPECT_EQ(messages.prompt_check_interval(kStart + 10s, 1s), Duration(500ms));
    // Never more often than 25 ms, never less often than the poll interval.
    EXPECT_EQ(messages.prompt_check_interval(kStart + 100ms, 1s), Duration(25ms));
    EXPECT_EQ(messages.prompt_check_interval(kStart + 60s, 1s), Duration(1s));
    // Once the oldest is seen, the next oldest sets the pace.
    messages.classify("old", in_inbox(1), kNow, kNow, kAgeLimit);
    EXPECT_EQ(messages.prompt_check_interval(kStart + 19s, 1s), Duration(500ms));
}

}  // namespace
}  // namespace mailcanary
