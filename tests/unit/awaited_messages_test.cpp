// The bookkeeping of a mailbox's probe messages, and the sweep's decision, with made-up times
// and real tokens: several trackers of one agent, other agents sharing the secret, tokens of
// both versions, foreign and malformed ones.
#include "probes/awaited_messages.hpp"

#include <gtest/gtest.h>

#include "protocols/token.hpp"

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;
using Found = AwaitedMessages::Found;

const Clock::time_point kStart{std::chrono::hours(1000)};
const SystemClock::time_point kNow = SystemClock::from_time_t(1'800'000'000);
constexpr Duration kAgeLimit = std::chrono::minutes(2);
constexpr const char* kSecret = "installation secret";
// An mc1 token signed with kSecret, as earlier versions wrote them (computed with Python's hmac).
constexpr const char* kLegacyToken =
    "mc1.0123456789abcdef0123456789abcdef.eba56d88cf5ded551fae7b74cc45a02c";

Arrival in_inbox(std::uint32_t uid) { return Arrival{"INBOX", false, kStart + 1s, uid, "h"}; }

std::string token_until(SystemClock::time_point deadline) { return make_token(kSecret, deadline); }

// One agent: its trackers share what they await.
struct Agent {
    std::shared_ptr<AwaitedTokens> awaits = std::make_shared<AwaitedTokens>();
    AwaitedMessages tracker() const { return AwaitedMessages(kSecret, awaits); }
};

Found found(AwaitedMessages& messages, const std::string& token,
            std::optional<SystemClock::time_point> stored = kNow - 1s) {
    return messages.classify(token, in_inbox(1), stored, kNow, kAgeLimit).found;
}

TEST(AwaitedMessages, AnAwaitedMessageIsRecordedForItsRunAndCountsPerTarget) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string t1 = token_until(kNow + 1min);
    messages.expect(t1, "mx", kStart);
    messages.expect(token_until(kNow + 1min), "mx", kStart);
    messages.expect(token_until(kNow + 1min), "other", kStart);
    EXPECT_EQ(messages.pending_for("mx"), 2u);
    EXPECT_EQ(messages.pending_for("other"), 1u);
    EXPECT_EQ(messages.arrival(t1), nullptr) << "not seen yet";

    const auto classified = messages.classify(t1, in_inbox(7), kNow - 1s, kNow, kAgeLimit);
    EXPECT_EQ(classified.found, Found::awaited);
    EXPECT_EQ(classified.target, "mx");
    ASSERT_NE(messages.arrival(t1), nullptr);
    EXPECT_EQ(messages.arrival(t1)->uid, 7u);

    EXPECT_EQ(messages.finish(t1), "mx");
    EXPECT_FALSE(messages.awaited(t1));
    EXPECT_EQ(messages.pending_for("mx"), 1u);
    // Done with it: found again (a copy left behind), it is in flight until its deadline.
    EXPECT_EQ(found(messages, t1), Found::in_flight);
}

TEST(AwaitedMessages, AMessageGivenUpAsLostIsLateWhenItComes) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string token = token_until(kNow - 10min);
    messages.expect(token, "mx", kStart);
    EXPECT_EQ(messages.give_up_as_lost(token), "mx");
    EXPECT_EQ(messages.pending_for("mx"), 0u);
    const auto classified = messages.classify(token, in_inbox(9), kNow, kNow, kAgeLimit);
    EXPECT_EQ(classified.found, Found::late);
    EXPECT_EQ(classified.target, "mx");
    // Counted once: found again, it is a leftover (its deadline is long past).
    EXPECT_EQ(found(messages, token), Found::leftover);
}

// The false alarm: a tracker with a short timeout swept what a tracker of the same
// agent, reading the same mailbox through another port, still waited for.
TEST(AwaitedMessages, NoTrackerTakesWhatAnotherTrackerOfTheAgentAwaits) {
    Agent agent;
    AwaitedMessages slow = agent.tracker();
    AwaitedMessages quick = agent.tracker();
    // Old by every measure the sweep has: stored an hour ago, its signed deadline long past.
    const std::string overdue = token_until(kNow - 1h);
    slow.expect(overdue, "slow", kStart);
    slow.expect(kLegacyToken, "slow", kStart);
    EXPECT_EQ(found(quick, overdue, kNow - 1h), Found::in_flight);
    EXPECT_EQ(found(quick, kLegacyToken, kNow - 1h), Found::in_flight)
        << "an mc1 token older than the age limit, but awaited in this agent";
    EXPECT_EQ(found(slow, overdue, kNow - 1h), Found::awaited) << "its own tracker takes it";

    // Once nobody in the agent waits, the other tracker may clean them up.
    slow.finish(overdue);
    slow.abandon(kLegacyToken);
    EXPECT_EQ(found(quick, overdue, kNow - 1h), Found::leftover);
    EXPECT_EQ(found(quick, kLegacyToken, kNow - 1h), Found::leftover);
}

TEST(AwaitedMessages, ATrackerGoneAwayAwaitsNothing) {
    Agent agent;
    AwaitedMessages remaining = agent.tracker();
    const std::string token = token_until(kNow - 1h);
    {
        AwaitedMessages removed_by_a_reload = agent.tracker();
        removed_by_a_reload.expect(token, "mx", kStart);
        EXPECT_EQ(found(remaining, token), Found::in_flight);
    }
    EXPECT_EQ(found(remaining, token), Found::leftover);
}

// Another agent with the same secret (or an earlier process of this one): the deadline it
// signed says how long it may wait, whatever this tracker's own timeout or the message's age.
TEST(AwaitedMessages, AnotherAgentsMessageIsLeftUntilItsSignedDeadlineAndTheGracePass) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const auto grace = AwaitedMessages::kDeadlineGrace;
    EXPECT_EQ(found(messages, token_until(kNow + 10min), kNow - 1h), Found::in_flight)
        << "stored long ago (a slow poller), still awaited for ten minutes";
    EXPECT_EQ(found(messages, token_until(kNow - grace + 1s), kNow - 1h), Found::in_flight)
        << "past its deadline, within the grace";
    EXPECT_EQ(found(messages, token_until(kNow - grace - 1s), kNow), Found::leftover)
        << "abandoned, though stored just now";
    EXPECT_EQ(found(messages, token_until(kNow - 1h), std::nullopt), Found::leftover)
        << "no INTERNALDATE is needed";
}

TEST(AwaitedMessages, AnAbandonedMessageIsALeftoverAtOnce) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string mine = token_until(kNow + 10min);
    messages.expect(mine, "mx", kStart);
    EXPECT_EQ(messages.abandon(mine), "mx");
    EXPECT_EQ(messages.abandon(mine), std::nullopt) << "once";
    EXPECT_EQ(found(messages, mine), Found::leftover) << "this process knows nobody waits";
}

TEST(AwaitedMessages, OldFormatTokensKeepTheAgeRule) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    EXPECT_EQ(found(messages, kLegacyToken, kNow - 1min), Found::in_flight);
    EXPECT_EQ(found(messages, kLegacyToken, kNow - kAgeLimit - 1s), Found::leftover);
    EXPECT_EQ(found(messages, kLegacyToken, std::nullopt), Found::in_flight)
        << "no INTERNALDATE: never old enough to take";
}

TEST(AwaitedMessages, ForeignForgedAndMalformedTokensAreNotOurs) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    std::string forged = token_until(kNow - 1h);
    forged.replace(4, 10, "1700000000");  // an earlier deadline written over the signed one
    const std::string own = token_until(kNow - 1h);
    for (const std::string& token :
         {make_token("another installation", kNow - 1h), forged, own + "0",
          own.substr(0, own.size() - 1), std::string("mc2.x"),
          std::string("mc1.00000000000000000000000000000000.00000000000000000000000000000000"),
          std::string(""), std::string("not a token at all")}) {
        EXPECT_EQ(found(messages, token, kNow - 1h), Found::not_ours) << token;
    }
    AwaitedMessages other_secret("another installation", agent.awaits);
    EXPECT_EQ(found(other_secret, kLegacyToken, kNow - 1h), Found::not_ours);
}

TEST(AwaitedMessages, RemembersABoundedNumberOfGivenUpTokens) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const auto count = AwaitedMessages::kMaxTokensRemembered + 1;
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < count; ++i) {
        tokens.push_back(token_until(kNow));
        messages.expect(tokens.back(), "mx", kStart);
        messages.give_up_as_lost(tokens.back());
    }
    // The oldest was forgotten: it comes back as one in flight (within the grace), the newest
    // as late.
    EXPECT_EQ(found(messages, tokens.front()), Found::in_flight);
    EXPECT_EQ(found(messages, tokens.back()), Found::late);
}

TEST(AwaitedMessages, PromptChecksFollowTheOldestUnseenMessage) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    EXPECT_EQ(messages.prompt_check_interval(kStart, 1s), std::nullopt) << "nothing awaited";
    const std::string old = token_until(kNow + 1min);
    messages.expect(old, "mx", kStart);
    messages.expect(token_until(kNow + 1min), "mx", kStart + 9s);
    // 1/20 of the oldest's 10 s in flight.
    EXPECT_EQ(messages.prompt_check_interval(kStart + 10s, 1s), Duration(500ms));
    // Never more often than 25 ms, never less often than the poll interval.
    EXPECT_EQ(messages.prompt_check_interval(kStart + 100ms, 1s), Duration(25ms));
    EXPECT_EQ(messages.prompt_check_interval(kStart + 60s, 1s), Duration(1s));
    // Once the oldest is seen, the next oldest sets the pace.
    messages.classify(old, in_inbox(1), kNow, kNow, kAgeLimit);
    EXPECT_EQ(messages.prompt_check_interval(kStart + 19s, 1s), Duration(500ms));
}

// --- Delivery status notifications ------------------------------------------------------------

Bounce failure_report(std::uint32_t uid, bool failed = true) {
    Bounce bounce;
    bounce.failed = failed;
    bounce.status = failed ? "5.1.1" : "4.4.1";
    bounce.diagnostic_code = "smtp; 550 5.1.1 <gone@example.test>: Recipient address rejected";
    bounce.reporting_mta = "mx.example.test";
    bounce.folder = "INBOX";
    bounce.uid = uid;
    return bounce;
}

using Report = AwaitedMessages::ClassifiedReport;

Report report(AwaitedMessages& messages, std::string_view token, std::string_view message_id,
              Bounce bounce) {
    return messages.classify_report(token, message_id, std::move(bounce), kNow - 1s, kNow,
                                    kAgeLimit);
}

TEST(AwaitedMessages, AReportReturningAVerifiedAwaitedTokenBouncesItsRunAndMayBeRemoved) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string token = token_until(kNow + 1min);
    messages.expect(token, "mx", kStart, "run1.mailcanary@canary.test");
    const Report classified = report(messages, token, "", failure_report(9));
    EXPECT_EQ(classified.found, Found::awaited) << "removed like the probe message";
    EXPECT_EQ(classified.run, token);
    EXPECT_TRUE(messages.bounced(token));
    ASSERT_EQ(messages.reports(token).size(), 1u);
    EXPECT_TRUE(messages.reports(token).front().verified);
    EXPECT_EQ(messages.reports(token).front().status, "5.1.1");

    report(messages, token, "", failure_report(9));
    EXPECT_EQ(messages.reports(token).size(), 1u) << "a sweep sees the same report again";
    EXPECT_EQ(messages.arrival(token), nullptr) << "a bounce is no arrival";
}

TEST(AwaitedMessages, AReportWithAForgedOrForeignTokenNeitherBouncesNorMayBeRemoved) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string token = token_until(kNow + 1min);
    messages.expect(token, "mx", kStart, "run1.mailcanary@canary.test");
    std::string forged = token;
    forged.back() = forged.back() == '0' ? '1' : '0';
    const std::string foreign = make_token("another installation", kNow - 1h);
    for (const std::string& returned : {forged, foreign, std::string("mc2.1.2.3")}) {
        const Report classified = report(messages, returned, "", failure_report(3));
        EXPECT_EQ(classified.found, Found::not_ours) << returned;
        EXPECT_EQ(classified.run, "") << returned;
    }
    EXPECT_FALSE(messages.bounced(token));
    EXPECT_TRUE(messages.reports(token).empty());
}

TEST(AwaitedMessages, AReportTiedByMessageIdAloneBouncesItsRunButIsNeverRemoved) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string token = token_until(kNow + 1min);
    messages.expect(token, "mx", kStart, "run1.mailcanary@canary.test");
    std::string forged = token;
    forged.back() = forged.back() == '0' ? '1' : '0';
    const Report forged_token =
        report(messages, forged, "run1.mailcanary@canary.test", failure_report(3));
    EXPECT_EQ(forged_token.run, "") << "a token that does not verify: not this agent's message";
    EXPECT_FALSE(messages.bounced(token));
    const Report classified =
        report(messages, "", "run1.mailcanary@canary.test", failure_report(4));
    EXPECT_EQ(classified.found, Found::not_ours) << "not removable";
    EXPECT_EQ(classified.run, token);
    EXPECT_TRUE(messages.bounced(token));
    ASSERT_EQ(messages.reports(token).size(), 1u);
    EXPECT_FALSE(messages.reports(token).front().verified);

    EXPECT_EQ(report(messages, "", "other.mailcanary@canary.test", failure_report(5)).run, "")
        << "another Message-ID";
}

TEST(AwaitedMessages, ADelayReportIsNotedButDoesNotBounce) {
    Agent agent;
    AwaitedMessages messages = agent.tracker();
    const std::string token = token_until(kNow + 1min);
    messages.expect(token, "mx", kStart);
    EXPECT_EQ(report(messages, token, "", failure_report(6, false)).found, Found::awaited);
    EXPECT_FALSE(messages.bounced(token));
    ASSERT_EQ(messages.reports(token).size(), 1u);
    EXPECT_FALSE(messages.reports(token).front().failed);
}

TEST(AwaitedMessages, AReportAboutAnotherTrackersMessageWaitsAndAboutAnEndedRunIsALeftover) {
    Agent agent;
    AwaitedMessages here = agent.tracker();
    AwaitedMessages there = agent.tracker();
    const std::string elsewhere = token_until(kNow + 1min);
    there.expect(elsewhere, "other", kStart);
    EXPECT_EQ(report(here, elsewhere, "", failure_report(1)).found, Found::in_flight);
    EXPECT_TRUE(there.reports(elsewhere).empty()) << "that run is told by its own tracker";

    const std::string ended = token_until(kNow + 1min);
    here.expect(ended, "mx", kStart);
    here.abandon(ended);
    EXPECT_EQ(report(here, ended, "", failure_report(2)).found, Found::leftover);
    const std::string lost = token_until(kNow + 1min);
    here.expect(lost, "mx", kStart);
    here.give_up_as_lost(lost);
    EXPECT_EQ(report(here, lost, "", failure_report(3)).found, Found::leftover);
    EXPECT_EQ(found(here, lost), Found::late) << "the message itself still counts as late";
    EXPECT_EQ(report(here, token_until(kNow + 1min), "", failure_report(4)).found, Found::in_flight)
        << "another agent's run may still wait for it";
}

}  // namespace
}  // namespace mailcanary
