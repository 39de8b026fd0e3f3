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

}  // namespace
}  // namespace mailcanary::imap
