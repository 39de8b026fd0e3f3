// The IMAP driver over real sockets, against a scripted server: deadlines, IDLE's two endings
// (new mail, or the time to re-issue it) and a server that goes away.
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <functional>

#include "protocols/imap_session.hpp"
#include "support/fake_smtp_server.hpp"

namespace mailcanary::imap {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::FakeSmtpServer;

constexpr const char* kGreeting = "* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] ready\r\n";

ClientOptions plaintext_login() {
    ClientOptions options;
    options.tls = TlsMode::none;
    options.allow_plaintext = true;
    options.credentials.username = "probe@example.test";
    options.credentials.secret = "s3cret";
    return options;
}

// Logs in, then plays the rest of the script.
std::vector<test::ScriptStep> logged_in_then(std::vector<test::ScriptStep> rest) {
    std::vector<test::ScriptStep> script{test::send(kGreeting), test::expect_line("C1 LOGIN"),
                                         test::send("C1 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n")};
    script.insert(script.end(), rest.begin(), rest.end());
    return script;
}

// Runs `body` with an open session to the server; returns how long the body took.
Clock::duration with_session(const FakeSmtpServer& server,
                             std::function<asio::awaitable<void>(Session&)> body,
                             Clock::duration open_timeout = 2s, bool* opened = nullptr,
                             Failure* failure = nullptr) {
    asio::io_context io;
    Transcript transcript;
    Session session(io.get_executor(), transcript);
    Clock::duration elapsed{};
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            const Endpoint endpoint{"127.0.0.1", server.port(), TlsMode::none, {}, nullptr};
            const bool open =
                co_await session.open(endpoint, plaintext_login(), Clock::now() + open_timeout);
            if (opened != nullptr) *opened = open;
            if (failure != nullptr) *failure = session.failure();
            if (!open) co_return;
            const auto started = Clock::now();
            co_await body(session);
            elapsed = Clock::now() - started;
        },
        asio::detached);
    io.run();
    return elapsed;
}

TEST(ImapSession, IdleSaysDoneWhenItsTimeIsUpAndCompletes) {
    FakeSmtpServer server(
        logged_in_then({test::expect_line("C2 IDLE"), test::send("+ idling\r\n"),
                        test::expect_line("DONE"), test::send("C2 OK Idle completed.\r\n")}));
    bool idled = false;
    const auto elapsed = with_session(server, [&](Session& session) -> asio::awaitable<void> {
        idled = co_await session.idle(Clock::now() + 300ms);
    });
    EXPECT_TRUE(idled);
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 2s);
    ASSERT_TRUE(server.wait_for_disconnects(2s));
    const auto lines = server.received_lines();
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "DONE"), 1);
}

TEST(ImapSession, IdleEndsAtOnceWhenNewMailIsAnnounced) {
    FakeSmtpServer server(logged_in_then(
        {test::expect_line("C2 IDLE"), test::send("+ idling\r\n"), test::delay(50ms),
         test::send("* 4 EXISTS\r\n"), test::expect_line("DONE"), test::send("C2 OK done\r\n"),
         test::expect_line("C3 NOOP"), test::send("C3 OK NOOP completed.\r\n")}));
    bool idled = false;
    std::optional<Completion> noop;
    const auto elapsed = with_session(server, [&](Session& session) -> asio::awaitable<void> {
        idled = co_await session.idle(Clock::now() + 10s);
        noop = co_await session.execute("NOOP", Clock::now() + 2s);  // the session goes on
    });
    EXPECT_TRUE(idled);
    EXPECT_LT(elapsed, 2s);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->ok());
}

TEST(ImapSession, EndIdleSaysDoneAtOnce) {
    FakeSmtpServer server(
        logged_in_then({test::expect_line("C2 IDLE"), test::send("+ idling\r\n"),
                        test::expect_line("DONE"), test::send("C2 OK Idle completed.\r\n"),
                        test::expect_line("C3 NOOP"), test::send("C3 OK NOOP completed.\r\n")}));
    bool idled = false;
    std::optional<Completion> noop;
    const auto elapsed = with_session(server, [&](Session& session) -> asio::awaitable<void> {
        asio::steady_timer soon(co_await asio::this_coro::executor, 100ms);
        soon.async_wait([&session](boost::system::error_code) { session.end_idle(); });
        idled = co_await session.idle(Clock::now() + 10s);
        session.end_idle();  // not idling: nothing to end, nothing sent
        noop = co_await session.execute("NOOP", Clock::now() + 2s);
    });
    EXPECT_TRUE(idled);
    EXPECT_GE(elapsed, 100ms);
    EXPECT_LT(elapsed, 2s);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->ok());
    ASSERT_TRUE(server.wait_for_disconnects(2s));
    const auto lines = server.received_lines();
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "DONE"), 1);
}

TEST(ImapSession, SilentServerFailsTheLoginAtTheDeadline) {
    FakeSmtpServer server({test::hang()});
    bool opened = true;
    Failure failure;
    const auto started = Clock::now();
    with_session(server, {}, 300ms, &opened, &failure);
    EXPECT_FALSE(opened);
    EXPECT_EQ(failure.reason, FailureReason::imap_connect);
    EXPECT_EQ(failure.detail, "timed out");
    EXPECT_LT(Clock::now() - started, 2s);
}

TEST(ImapSession, CommandOnASessionTheServerClosedFails) {
    FakeSmtpServer server(logged_in_then({test::expect_line("C2 NOOP"), test::close()}));
    std::optional<Completion> noop = Completion{};
    Failure failure;
    with_session(server, [&](Session& session) -> asio::awaitable<void> {
        noop = co_await session.execute("NOOP", Clock::now() + 2s);
        failure = session.failure();
    });
    EXPECT_FALSE(noop.has_value());
    EXPECT_EQ(failure.reason, FailureReason::imap_protocol);
    EXPECT_EQ(failure.detail, "the server closed the connection");
}

TEST(ImapSession, RejectedLoginKeepsTheServersWords) {
    FakeSmtpServer server({test::send(kGreeting), test::expect_line("C1 LOGIN"),
                           test::send("C1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")});
    bool opened = true;
    Failure failure;
    with_session(server, {}, 2s, &opened, &failure);
    EXPECT_FALSE(opened);
    EXPECT_EQ(failure.reason, FailureReason::imap_auth);
    EXPECT_EQ(failure.detail, "login: NO [AUTHENTICATIONFAILED] Authentication failed.");
}

}  // namespace
}  // namespace mailcanary::imap
