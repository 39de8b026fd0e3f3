// The IMAP driver over real sockets, against a scripted server: deadlines, IDLE's two endings
// (new mail, or the time to re-issue it), a server that goes away, what a session records
// (phases, certificate facts) and its failure reasons.
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <filesystem>
#include <functional>

#include "protocols/imap_session.hpp"
#include "protocols/tls_client.hpp"
#include "support/fake_smtp_server.hpp"
#include "support/test_pki.hpp"

namespace mailcanary::imap {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::FakeSmtpServer;
using test::KeyPair;
using test::TestPki;

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
    EXPECT_EQ(failure.reason, FailureReason::timeout);
    EXPECT_EQ(failure.detail, "timed out during greeting");
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
    EXPECT_EQ(failure.reason, FailureReason::closed);
    EXPECT_EQ(failure.detail, "the server closed the connection");
}

TEST(ImapSession, RejectedLoginKeepsTheServersWords) {
    FakeSmtpServer server({test::send(kGreeting), test::expect_line("C1 LOGIN"),
                           test::send("C1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")});
    bool opened = true;
    Failure failure;
    with_session(server, {}, 2s, &opened, &failure);
    EXPECT_FALSE(opened);
    EXPECT_EQ(failure.reason, FailureReason::auth_rejected);
    EXPECT_EQ(failure.detail, "login: NO [AUTHENTICATIONFAILED] Authentication failed.");
}

// What one session recorded, opened against `endpoint` and then driven by `body`.
struct Recorded {
    bool opened = false;
    Failure failure;
    RunMetrics metrics;
    std::string transcript;
};

Recorded record_session(const Endpoint& endpoint, ClientOptions options,
                        std::function<asio::awaitable<void>(Session&)> body = {},
                        Clock::duration timeout = 2s) {
    asio::io_context io;
    Transcript transcript;
    Recorded recorded;
    Session session(io.get_executor(), transcript, &recorded.metrics);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            recorded.opened =
                co_await session.open(endpoint, std::move(options), Clock::now() + timeout);
            if (recorded.opened && body) co_await body(session);
            recorded.failure = session.failure();
        },
        asio::detached);
    io.run();
    recorded.transcript = transcript.to_text();
    return recorded;
}

bool has_phase(const RunMetrics& metrics, Phase phase) {
    return metrics.phase_durations[static_cast<std::size_t>(phase)].has_value();
}

Endpoint plaintext_endpoint(uint16_t port) {
    return {"127.0.0.1", port, TlsMode::none, {}, nullptr};
}

TEST(ImapSession, RecordsItsPhasesAndLogsOutCleanly) {
    FakeSmtpServer server(
        {test::send("* OK IMAP4rev1 ready\r\n"), test::expect_line("C1 CAPABILITY"),
         test::send("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nC1 OK done\r\n"),
         test::expect_line("C2 LOGIN"), test::send("C2 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n"),
         test::expect_line("C3 SELECT INBOX"),
         test::send("* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"
                    "C3 OK [READ-WRITE] SELECT completed\r\n"),
         test::expect_line("C4 LOGOUT"),
         test::send("* BYE Logging out\r\nC4 OK Logout completed.\r\n"), test::close()});
    std::optional<Completion> selected;
    bool logged_out = false;
    const auto recorded = record_session(
        plaintext_endpoint(server.port()), plaintext_login(),
        [&](Session& session) -> asio::awaitable<void> {
            selected = co_await session.execute("SELECT INBOX", Clock::now() + 2s, Phase::select);
            logged_out = co_await session.logout(Clock::now() + 2s);
        });
    ASSERT_TRUE(recorded.opened) << recorded.transcript;
    ASSERT_TRUE(selected.has_value());
    ASSERT_FALSE(selected->untagged.empty());
    EXPECT_EQ(selected->untagged.front().name, "EXISTS");
    EXPECT_EQ(selected->untagged.front().number, 3u);
    EXPECT_TRUE(logged_out) << recorded.failure.detail;
    for (const Phase phase : {Phase::resolve, Phase::connect, Phase::greeting, Phase::capability,
                              Phase::auth, Phase::select, Phase::logout}) {
        EXPECT_TRUE(has_phase(recorded.metrics, phase)) << to_string(phase);
    }
    EXPECT_FALSE(has_phase(recorded.metrics, Phase::tls_handshake));
    EXPECT_FALSE(recorded.metrics.tls_version);
    ASSERT_TRUE(server.wait_for_disconnects(2s));
    EXPECT_EQ(server.received_lines().back(), "C4 LOGOUT");
}

TEST(ImapSession, WithoutMetricsNothingIsRecordedAndCommandsAreUntimed) {
    FakeSmtpServer server(logged_in_then({test::expect_line("C2 NOOP"), test::send("C2 OK\r\n")}));
    std::optional<Completion> noop;
    with_session(server, [&](Session& session) -> asio::awaitable<void> {
        noop = co_await session.execute("NOOP", Clock::now() + 2s);
    });
    ASSERT_TRUE(noop.has_value());  // and no metrics to write into: nothing crashed
}

TEST(ImapSession, RejectedSelectIsACompletionForTheCallerToJudge) {
    FakeSmtpServer server(logged_in_then(
        {test::expect_line("C2 SELECT"), test::send("C2 NO [NONEXISTENT] no such mailbox\r\n")}));
    std::optional<Completion> selected;
    const auto recorded = record_session(
        plaintext_endpoint(server.port()), plaintext_login(),
        [&](Session& session) -> asio::awaitable<void> {
            selected = co_await session.execute("SELECT Missing", Clock::now() + 2s, Phase::select);
        });
    ASSERT_TRUE(selected.has_value());
    EXPECT_FALSE(selected->ok());
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::select));
}

TEST(ImapSession, ByeGreetingIsGreetingRejected) {
    FakeSmtpServer server(
        {test::send("* BYE Too many connections from your IP\r\n"), test::close()});
    const auto recorded = record_session(plaintext_endpoint(server.port()), plaintext_login());
    EXPECT_FALSE(recorded.opened);
    EXPECT_EQ(recorded.failure.reason, FailureReason::greeting_rejected);
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::greeting));
}

TEST(ImapSession, NothingListeningIsConnectRefused) {
    const auto recorded = record_session(plaintext_endpoint(1), plaintext_login());
    EXPECT_FALSE(recorded.opened);
    EXPECT_EQ(recorded.failure.reason, FailureReason::connect_refused);
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::connect));
}

TEST(ImapSession, UnresolvableHostIsDns) {
    const auto recorded = record_session({"no-such-host.invalid", 143, TlsMode::none, {}, nullptr},
                                         plaintext_login());
    EXPECT_FALSE(recorded.opened);
    EXPECT_EQ(recorded.failure.reason, FailureReason::dns);
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::resolve));
}

// --- Hostile servers (docs/testing.md, "Hostile servers") ------------------------------------
//
// Each fault ends within the deadline the session was given, with a classified reason, and
// nothing the server sends grows what the session holds beyond ResponseReader::kMaxHeldBytes.

// How a session driven by `body` after its login ended: its failure and how long the body took.
struct Ended {
    Failure failure;
    Clock::duration elapsed{};
};

// What a test does once logged in: true when it succeeded.
using Body = std::function<asio::awaitable<bool>(Session&)>;

Ended end_of(const FakeSmtpServer& server, Body body) {
    Ended ended;
    bool succeeded = true;
    bool opened = false;
    ended.elapsed = with_session(
        server,
        [&](Session& session) -> asio::awaitable<void> {
            succeeded = co_await body(session);
            ended.failure = session.failure();
        },
        2s, &opened);
    EXPECT_TRUE(opened);
    EXPECT_FALSE(succeeded) << "the session should have failed";
    return ended;
}

Body command(std::string text, Clock::duration timeout) {
    return [text = std::move(text), timeout](Session& session) -> asio::awaitable<bool> {
        co_return (co_await session.execute(text, Clock::now() + timeout)).has_value();
    };
}

Body idle_for(Clock::duration time) {
    return [time](Session& session) -> asio::awaitable<bool> {
        co_return co_await session.idle(Clock::now() + time);
    };
}

// The server says BYE while the client idles and keeps the socket open: nothing more will come,
// and the session ends at once, not when IDLE's time is up.
TEST(ImapHostile, ByeInTheMiddleOfIdleEndsTheSessionAtOnce) {
    FakeSmtpServer server(
        logged_in_then({test::expect_line("C2 IDLE"), test::send("+ idling\r\n"), test::delay(50ms),
                        test::send("* BYE Server shutting down.\r\n"), test::hang()}));
    const Ended ended = end_of(server, idle_for(10s));
    EXPECT_EQ(ended.failure.reason, FailureReason::closed);
    EXPECT_EQ(ended.failure.detail, "the server said BYE Server shutting down.");
    EXPECT_LT(ended.elapsed, 1s);
}

// Refused when announced: the client does not wait for (or hold) a byte of it.
TEST(ImapHostile, ALiteralOfGigabytesIsRefusedWhenAnnounced) {
    FakeSmtpServer server(logged_in_then(
        {test::expect_line("C2 UID FETCH"), test::send("* 1 FETCH (UID 7 BODY[] {5368709120}\r\n"),
         test::send_forever(std::string(std::size_t{16} * 1024, 'x'))}));
    const Ended ended = end_of(server, command("UID FETCH 7 BODY.PEEK[]", 2s));
    EXPECT_EQ(ended.failure.reason, FailureReason::protocol);
    EXPECT_EQ(ended.failure.detail, "a literal of 5368709120 bytes");
    EXPECT_LT(ended.elapsed, 1s);
}

// The server keeps talking (untagged OKs) but never completes the command: the deadline bounds
// the command as a whole, not each read.
TEST(ImapHostile, ATagNeverAnsweredEndsAtTheDeadlineThoughTheServerKeepsTalking) {
    std::vector<test::ScriptStep> chatter{test::expect_line("C2 NOOP")};
    for (int i = 0; i < 20; ++i) {
        chatter.push_back(test::send("* OK still working\r\n"));
        chatter.push_back(test::delay(50ms));
    }
    chatter.push_back(test::hang());
    FakeSmtpServer server(logged_in_then(chatter));
    const Ended ended = end_of(server, command("NOOP", 400ms));
    EXPECT_EQ(ended.failure.reason, FailureReason::timeout);
    EXPECT_EQ(ended.failure.detail, "timed out");
    EXPECT_GE(ended.elapsed, 400ms);
    EXPECT_LT(ended.elapsed, 1500ms);
}

struct Flood {
    const char* name;
    std::string request;  // what the client sends: a command, or IDLE
    std::string chunk;    // what the server then sends forever
};

void PrintTo(const Flood& flood, std::ostream* out) { *out << flood.name; }

class ImapFlood : public testing::TestWithParam<Flood> {};

// Tiny responses (which cost more parsed than on the wire) or long lines, to a command or in
// IDLE: the reader refuses the stream once what it holds passes its cap, long before the
// deadline; the cap itself is tested on the reader (imap_dialog_test.cpp).
TEST_P(ImapFlood, IsRefusedAtTheCapLongBeforeTheDeadline) {
    const Flood& flood = GetParam();
    std::vector<test::ScriptStep> script{test::expect_line("C2 " + flood.request)};
    if (flood.request == "IDLE") script.push_back(test::send("+ idling\r\n"));
    script.push_back(test::send_forever(flood.chunk));
    FakeSmtpServer server(logged_in_then(script));
    const Ended ended =
        end_of(server, flood.request == "IDLE" ? idle_for(20s) : command(flood.request, 20s));
    EXPECT_EQ(ended.failure.reason, FailureReason::protocol) << ended.failure.detail;
    EXPECT_NE(ended.failure.detail.find("untagged flood"), std::string::npos)
        << ended.failure.detail;
    EXPECT_LT(ended.elapsed, 10s);
}

std::string repeated(const std::string& line, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += line;
    return out;
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, ImapFlood,
    testing::Values(Flood{"exists_to_a_command", "NOOP", repeated("* 1 EXISTS\r\n", 1000)},
                    Flood{"search_items", "UID SEARCH ALL",
                          "* SEARCH " + repeated("1 ", 4000) + "1\r\n"},
                    Flood{"long_lines_in_idle", "IDLE",
                          "* OK " + std::string(std::size_t{60} * 1024, 'x') + "\r\n"},
                    Flood{"recent_in_idle", "IDLE", repeated("* 2 RECENT\r\n", 1000)}),
    [](const testing::TestParamInfo<Flood>& param_info) {
        return std::string(param_info.param.name);
    });

TEST(ImapHostile, GarbageIsProtocol) {
    struct Case {
        const char* name;
        std::vector<test::ScriptStep> reply;
        const char* detail;
    };
    const std::vector<Case> cases{
        {"an HTTP answer",
         {test::send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), test::hang()},
         "a completion for a command not sent: HTTP/1.1 400 Bad Request"},
        {"endless bytes without a line end",
         {test::send_forever(std::string(4096, '\x16'))},
         "a response line longer than 65536 bytes"}};
    for (const Case& each : cases) {
        SCOPED_TRACE(each.name);
        std::vector<test::ScriptStep> script{test::expect_line("C2 NOOP")};
        script.insert(script.end(), each.reply.begin(), each.reply.end());
        FakeSmtpServer server(logged_in_then(script));
        const Ended ended = end_of(server, command("NOOP", 2s));
        EXPECT_EQ(ended.failure.reason, FailureReason::protocol);
        EXPECT_EQ(ended.failure.detail, each.detail);
        EXPECT_LT(ended.elapsed, 1s);
    }
}

// Half a FETCH response, then a TCP reset: the network failed, the command did not complete.
TEST(ImapHostile, AConnectionResetDuringFetchIsNetwork) {
    FakeSmtpServer server(logged_in_then({test::expect_line("C2 UID FETCH"),
                                          test::send("* 1 FETCH (UID 7 BODY[] {100}\r\nhalf"),
                                          test::delay(50ms), test::reset()}));
    const Ended ended = end_of(server, command("UID FETCH 7 BODY.PEEK[]", 2s));
    EXPECT_EQ(ended.failure.reason, FailureReason::network) << ended.failure.detail;
    EXPECT_NE(ended.failure.detail.find("reset"), std::string::npos) << ended.failure.detail;
    EXPECT_LT(ended.elapsed, 1s);
}

class ImapSessionTls : public testing::Test {
  protected:
    ImapSessionTls() {
        dir_ = std::filesystem::temp_directory_path() /
               ("mailcanary-imap-session-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        ca_file_ = pki_.write_ca_file(dir_);
    }

    Endpoint endpoint(uint16_t port, TlsMode tls, std::string server_name = {}) const {
        Endpoint endpoint{"127.0.0.1", port, tls, {}, nullptr};
        endpoint.tls_options.ca_file = ca_file_;
        endpoint.tls_options.server_name = std::move(server_name);
        std::string error;
        endpoint.tls_context = tls::make_client_context(endpoint.tls_options, error);
        EXPECT_EQ(error, "");
        return endpoint;
    }

    static ClientOptions login(TlsMode tls) {
        ClientOptions options = plaintext_login();
        options.tls = tls;
        options.allow_plaintext = false;
        return options;
    }

    static std::vector<test::ScriptStep> starttls_then_login() {
        return {test::send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
                test::expect_line("C1 STARTTLS"),
                test::send("C1 OK Begin TLS negotiation now.\r\n"),
                test::start_tls(),
                test::expect_line("C2 CAPABILITY"),
                test::send("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nC2 OK\r\n"),
                test::expect_line("C3 LOGIN"),
                test::send("C3 OK [CAPABILITY IMAP4rev1] in\r\n")};
    }

    TestPki pki_;
    std::filesystem::path dir_;
    std::string ca_file_;
};

TEST_F(ImapSessionTls, StartTlsRecordsWhatAnSmtpSessionRecords) {
    FakeSmtpServer server(starttls_then_login(), {.tls = pki_.issue({}), .implicit_tls = false});
    const auto recorded =
        record_session(endpoint(server.port(), TlsMode::starttls), login(TlsMode::starttls));
    ASSERT_TRUE(recorded.opened) << recorded.failure.detail << "\n" << recorded.transcript;
    for (const Phase phase :
         {Phase::greeting, Phase::starttls, Phase::tls_handshake, Phase::capability, Phase::auth}) {
        EXPECT_TRUE(has_phase(recorded.metrics, phase)) << to_string(phase);
    }
    EXPECT_EQ(recorded.metrics.tls_version, "TLSv1.3");
    EXPECT_TRUE(recorded.metrics.tls_cipher);
    ASSERT_TRUE(recorded.metrics.cert_not_after);
    EXPECT_GT(*recorded.metrics.cert_not_after, std::chrono::system_clock::now() + 24h);
}

TEST_F(ImapSessionTls, ImplicitTls) {
    FakeSmtpServer server({test::send(kGreeting), test::expect_line("C1 LOGIN"),
                           test::send("C1 OK [CAPABILITY IMAP4rev1] in\r\n")},
                          {.tls = pki_.issue({}), .implicit_tls = true});
    const auto recorded =
        record_session(endpoint(server.port(), TlsMode::implicit), login(TlsMode::implicit));
    ASSERT_TRUE(recorded.opened) << recorded.failure.detail << "\n" << recorded.transcript;
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::tls_handshake));
    EXPECT_FALSE(has_phase(recorded.metrics, Phase::starttls));
}

TEST_F(ImapSessionTls, CertificateFailuresAreClassifiedAndTheExpiryIsStillKnown) {
    const auto now = std::chrono::system_clock::now();
    struct Case {
        KeyPair key;
        std::string server_name;
        FailureReason reason;
    };
    const std::vector<Case> cases{
        {TestPki::self_signed({}), "", FailureReason::tls_cert_untrusted},
        {pki_.issue({.not_before = now - 48h, .not_after = now - 24h}), "",
         FailureReason::tls_cert_expired},
        {pki_.issue({}), "imap.elsewhere.example", FailureReason::tls_cert_hostname}};
    for (const Case& each : cases) {
        SCOPED_TRACE(to_string(each.reason));
        FakeSmtpServer server(starttls_then_login(), {.tls = each.key, .implicit_tls = false});
        const auto recorded = record_session(
            endpoint(server.port(), TlsMode::starttls, each.server_name), login(TlsMode::starttls));
        EXPECT_FALSE(recorded.opened);
        EXPECT_EQ(recorded.failure.reason, each.reason) << recorded.failure.detail;
        EXPECT_NE(recorded.failure.detail.find("certificate"), std::string::npos)
            << recorded.failure.detail;
        EXPECT_TRUE(recorded.metrics.cert_not_after)
            << "the expiry is known even when verification fails";
    }
}

// As for SMTP: a handshake the server aborts after its certificate is the handshake's failure,
// with the server's alert, whether the certificate is verified or not.
TEST_F(ImapSessionTls, AHandshakeTheServerAbortsIsTlsHandshakeVerifiedOrNot) {
    struct Case {
        const char* name = nullptr;
        KeyPair key;
        bool skip_verify = false;
    };
    for (const Case& each : {Case{"trusted, verified", pki_.issue({}), false},
                             Case{"self-signed, not verified", TestPki::self_signed({}), true}}) {
        SCOPED_TRACE(each.name);
        FakeSmtpServer server({test::abort_tls()}, {.tls = each.key, .implicit_tls = false});
        Endpoint implicit = endpoint(server.port(), TlsMode::implicit);
        implicit.tls_options.insecure_skip_verify = each.skip_verify;
        const auto recorded = record_session(implicit, login(TlsMode::implicit));
        EXPECT_FALSE(recorded.opened);
        EXPECT_EQ(recorded.failure.reason, FailureReason::tls_handshake)
            << to_string(recorded.failure.reason) << ": " << recorded.failure.detail;
        EXPECT_NE(recorded.failure.detail.find("TLS handshake: tlsv1 alert internal error"),
                  std::string::npos)
            << recorded.failure.detail;
        EXPECT_TRUE(recorded.metrics.cert_not_after) << "the certificate came before the abort";
    }
}

TEST_F(ImapSessionTls, RefusedStartTlsIsStartTlsRejected) {
    FakeSmtpServer server(
        {test::send("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
         test::expect_line("C1 STARTTLS"), test::send("C1 BAD TLS support isn't enabled.\r\n")},
        {.tls = pki_.issue({}), .implicit_tls = false});
    const auto recorded =
        record_session(endpoint(server.port(), TlsMode::starttls), login(TlsMode::starttls));
    EXPECT_FALSE(recorded.opened);
    EXPECT_EQ(recorded.failure.reason, FailureReason::starttls_rejected);
    EXPECT_TRUE(has_phase(recorded.metrics, Phase::starttls));
}

// A server that accepts the connection and then says nothing at the point TLS begins: after the
// client's ClientHello (implicit TLS), after STARTTLS (no answer), or after its own OK to
// STARTTLS (no handshake). Each is `timeout` at the deadline, in the phase it stalled in.
TEST_F(ImapSessionTls, SilenceWhereTlsBeginsIsTimeoutAtTheDeadline) {
    struct Case {
        const char* name;
        std::vector<test::ScriptStep> script;
        TlsMode tls;
        const char* detail;
    };
    const std::string greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n";
    const std::vector<Case> cases{
        {"stalled after ClientHello",
         {test::hang()},
         TlsMode::implicit,
         "timed out during tls_handshake"},
        {"STARTTLS unanswered",
         {test::send(greeting), test::expect_line("C1 STARTTLS"), test::hang()},
         TlsMode::starttls,
         "timed out during starttls"},
        {"silent after STARTTLS OK",
         {test::send(greeting), test::expect_line("C1 STARTTLS"),
          test::send("C1 OK Begin TLS negotiation now.\r\n"), test::hang()},
         TlsMode::starttls,
         "timed out during tls_handshake"}};
    for (const Case& each : cases) {
        SCOPED_TRACE(each.name);
        FakeSmtpServer server(each.script);
        const auto started = Clock::now();
        const auto recorded =
            record_session(endpoint(server.port(), each.tls), login(each.tls), {}, 300ms);
        const auto elapsed = Clock::now() - started;
        EXPECT_FALSE(recorded.opened);
        EXPECT_EQ(recorded.failure.reason, FailureReason::timeout) << recorded.failure.detail;
        EXPECT_EQ(recorded.failure.detail, each.detail);
        EXPECT_GE(elapsed, 300ms);
        EXPECT_LT(elapsed, 1s);
    }
}

}  // namespace
}  // namespace mailcanary::imap
