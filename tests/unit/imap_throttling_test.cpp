// Throttling is not an outage and not a login failure. What says "throttled", and the sources:
// - RFC 5530 3: LIMIT ("the operation ran up against an implementation limit", which on a login
//   or a session is one on sessions or commands) and OVERQUOTA ("the user would be over quota
//   after the operation"): to a command that stores mail (APPEND, COPY, MOVE) that is the
//   storage quota, a full mailbox, so it stays that command's failure; to anything else it is a
//   quota on use, as Gmail's daily command and bandwidth limits
//   (https://support.google.com/a/answer/1071518; "[OVERQUOTA] Account exceeded command or
//   bandwidth limits." to FETCH in ljmerza/ha-email-sensor #16 and mailcow #1554).
//   UNAVAILABLE ("a subsystem is down") and INUSE (a lock held elsewhere) are temporary too,
//   but the server's trouble, not a limit on the client: they keep their reasons (at login,
//   auth_tempfail).
// - Gmail: "NO [ALERT] Too many simultaneous connections. (Failure)" past 15 sessions of one
//   account (https://support.google.com/mail/answer/7126229; jstedfast/MailKit #377,
//   zone-eu/wildduck #35, imapsync/imapsync #61).
// - Microsoft: "Request is throttled. Suggested Backoff Time: N milliseconds", as NO (ikvk/
//   imap_tools #135, imapsync/imapsync #198) or BAD then "* BYE Connection closed. 14"
//   (simonrob/email-oauth2-proxy #191); imapsync's Office 365 FAQ: wait that long.
// - Dovecot past mail_max_userip_connections (10 by default): "NO [UNAVAILABLE] Maximum number of
//   connections from user+IP exceeded (mail_max_userip_connections=10)" to the login (its
//   login-common/sasl-server.c; seen so in docker-mailserver fault-injection reports): the text
//   decides over the code.
// - Not throttling: Exchange's "BAD User is authenticated but not connected." Its causes in
//   public threads are a login to a mailbox the account has no rights to (jstedfast/MailKit
//   #1135), OAuth scopes or a service principal without mailbox permission
//   (simonrob/email-oauth2-proxy #74 and #275, getmail6 #214), a wrong password Exchange
//   accepted at LOGIN (imapsync's Office 365 FAQ) and only sometimes a burst of connections
//   that clears by itself (atc0005/check-mail #183, mscdex/node-imap #523). Most are lasting
//   misconfigurations: reading it as throttling would hide them. It stays the failure of the
//   command it answers (select_rejected for the imap probe).
#include "protocols/imap_throttling.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/throttle_backoff.hpp"
#include "probes/imap_account.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using imap::throttling;

TEST(ImapThrottling, CodesAndProvidersWords) {
    EXPECT_TRUE(throttling("LIMIT", "Too many connections", "LOGIN"));
    EXPECT_TRUE(
        throttling("OVERQUOTA", "Account exceeded command or bandwidth limits.", "UID FETCH"));
    EXPECT_TRUE(
        throttling("ALERT", "Too many simultaneous connections. (Failure)", "AUTHENTICATE"));
    EXPECT_TRUE(
        throttling("", "Request is throttled. Suggested Backoff Time: 1 milliseconds", "SELECT"));
    EXPECT_TRUE(throttling("", "request is THROTTLED", "")) << "case does not matter";
    EXPECT_TRUE(throttling("UNAVAILABLE",
                           "Maximum number of connections from user+IP exceeded "
                           "(mail_max_userip_connections=10)",
                           "LOGIN"));

    for (const char* storing : {"APPEND", "COPY", "MOVE", "UID COPY", "uid move"}) {
        EXPECT_FALSE(throttling("OVERQUOTA", "Quota exceeded", storing))
            << storing << ": a full mailbox";
    }
    EXPECT_FALSE(throttling("UNAVAILABLE", "Server error - Please try again later", "LOGIN"));
    EXPECT_FALSE(throttling("INUSE", "Mailbox in use", "SELECT"));
    EXPECT_FALSE(throttling("AUTHENTICATIONFAILED", "Invalid credentials (Failure)", "LOGIN"));
    EXPECT_FALSE(throttling("", "LOGIN failed.", "LOGIN"));
    EXPECT_FALSE(throttling("", "User is authenticated but not connected.", "SELECT"));
    EXPECT_FALSE(throttling("LIMITED", "", "LOGIN")) << "a code is a whole word";
}

TEST(ImapThrottling, TheSuggestedBackoffIsReadAndBounded) {
    EXPECT_EQ(imap::suggested_backoff("Request is throttled. Suggested Backoff Time: 299910 "
                                      "milliseconds"),
              299910ms);
    EXPECT_EQ(throttling("", "Request is throttled. Suggested Backoff Time: 5 milliseconds", "")
                  ->backoff_hint,
              5ms);
    EXPECT_FALSE(imap::suggested_backoff("Request is throttled."));
    EXPECT_FALSE(imap::suggested_backoff("Suggested Backoff Time: soon"));
    EXPECT_FALSE(imap::suggested_backoff("Suggested Backoff Time:"));
    EXPECT_EQ(imap::suggested_backoff("Suggested Backoff Time: 99999999999 milliseconds"), 1h)
        << "an hour at most";
    EXPECT_EQ(imap::suggested_backoff("Suggested Backoff Time: 999999999999999999999999"), 1h);
}

using Clock = std::chrono::steady_clock;

TEST(ThrottleBackoff, TheHintOrDoublingStepsUpToTheCapUntilTheServerLetsIn) {
    ThrottleBackoff backoff(30s, 2min);
    const Clock::time_point t0{};
    EXPECT_FALSE(backoff.until(t0));
    backoff.throttled(t0, std::nullopt);
    EXPECT_EQ(backoff.until(t0), t0 + 30s);
    EXPECT_EQ(backoff.until(t0 + 29s), t0 + 30s);
    EXPECT_FALSE(backoff.until(t0 + 30s)) << "over at its end";
    backoff.throttled(t0 + 30s, std::nullopt);
    EXPECT_EQ(backoff.until(t0 + 30s), t0 + 90s) << "twice as long";
    backoff.throttled(t0 + 90s, std::nullopt);
    backoff.throttled(t0 + 210s, std::nullopt);
    EXPECT_EQ(backoff.until(t0 + 210s), t0 + 330s) << "at the cap of 2 min";
    backoff.cleared();
    EXPECT_FALSE(backoff.until(t0 + 211s));
    backoff.throttled(t0 + 400s, std::nullopt);
    EXPECT_EQ(backoff.until(t0 + 400s), t0 + 430s) << "starts over";

    ThrottleBackoff hinted(30s, 2min);
    hinted.throttled(t0, Duration(5min));
    EXPECT_EQ(hinted.until(t0), t0 + 5min) << "the server's word, beyond the cap";
    hinted.throttled(t0 + 1s, Duration(2s));
    EXPECT_EQ(hinted.until(t0 + 1s), t0 + 5min) << "a shorter hint does not cut it short";
    EXPECT_EQ(hinted.last_wait(), 2s);
}

TEST(ImapAccount, OnlyAThrottlingStartsABackoffAndALoginEndsIt) {
    ImapAccount account("probe@imap.example:993", 2);
    const Clock::time_point now = Clock::now();
    account.session_failed({FailureReason::auth_rejected, "NO LOGIN failed."}, now);
    account.session_failed({FailureReason::closed, "the server closed the connection"}, now);
    EXPECT_FALSE(account.backoff_until(now));
    account.session_failed({FailureReason::throttled, "LOGIN: NO Request is throttled.", 1500ms},
                           now);
    EXPECT_EQ(account.backoff_until(now), now + 1500ms);
    account.logged_in();
    EXPECT_FALSE(account.backoff_until(now));
}

// Sessions beyond the bound wait for one to end, in turn, or until their time is up; a wait its
// owner cancels takes no place.
TEST(ImapAccount, SessionsBeyondTheBoundWaitForOneToEnd) {
    asio::io_context io;
    const auto account = std::make_shared<ImapAccount>("probe@imap.example:993", 2);
    std::vector<std::optional<ImapAccount::Slot>> slots(5);
    std::vector<bool> done(5, false);
    asio::steady_timer forever(io, Clock::time_point::max());
    asio::steady_timer soon(io, Clock::now() + 50ms);
    asio::steady_timer cancelled(io, Clock::time_point::max());
    const auto take = [&](std::size_t i, asio::steady_timer& timer) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                slots[i] = co_await account->take_slot(timer);
                done[i] = true;
            },
            asio::detached);
    };
    asio::steady_timer first(io, Clock::time_point::max());
    asio::steady_timer second(io, Clock::time_point::max());
    take(0, first);
    take(1, second);
    take(2, forever);
    take(3, soon);
    take(4, cancelled);
    io.poll();
    EXPECT_TRUE(done[0] && slots[0] && done[1] && slots[1]);
    EXPECT_EQ(account->open_sessions(), 2u);
    EXPECT_FALSE(done[2] || done[3] || done[4]);
    cancelled.cancel();
    io.run_for(100ms);
    EXPECT_TRUE(done[4] && !slots[4]) << "its owner gave up";
    EXPECT_TRUE(done[3] && !slots[3]) << "no place within its time";
    EXPECT_FALSE(done[2]);
    slots[0].reset();
    io.poll();
    EXPECT_TRUE(done[2] && slots[2]) << "the place given back goes to the one still waiting";
    EXPECT_EQ(account->open_sessions(), 2u);
    slots.clear();
    EXPECT_EQ(account->open_sessions(), 0u);
}

}  // namespace
}  // namespace mailcanary
