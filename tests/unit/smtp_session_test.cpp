// The connect probe through real sockets, against the in-process fake server: the faults a real
// server will not show (hangs, drips, endless replies, garbage, injected plaintext) and TLS
// certificates made at test time.
#include <utility>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/blocking_work.hpp"
#include "probes/auth_probe.hpp"
#include "probes/connect_probe.hpp"
#include "protocols/network.hpp"
#include "protocols/oauth_token.hpp"
#include "protocols/sasl.hpp"
#include "protocols/smtp_session.hpp"
#include "protocols/tls_client.hpp"
#include "support/fake_smtp_server.hpp"
#include "support/fake_token_endpoint.hpp"
#include "support/provider_transcripts.hpp"
#include "support/test_pki.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct ProbeResult {
    Outcome outcome;
    RunMetrics metrics;
    std::string transcript;
    Clock::duration elapsed{};
};

class SessionTest : public testing::Test {
  protected:
    SessionTest() {
        dir_ = std::filesystem::temp_directory_path() /
               ("mailcanary-session-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        ca_file_ = pki_.write_ca_file(dir_);
    }

    TargetConfig target(uint16_t port, TlsMode tls, std::chrono::milliseconds timeout = 2s) const {
        TargetConfig config;
        config.name = "fake";
        config.host = "127.0.0.1";
        config.port = port;
        config.tls = tls;
        config.helo = "probe.example";
        config.timeout = timeout;
        config.interval = timeout * 2;
        config.tls_options.ca_file = ca_file_;
        return config;
    }

    static CompiledTarget compile(const TargetConfig& config) {
        CompiledTarget compiled(config);
        compiled.smtp = Endpoint{.host = config.host,
                                 .port = config.port,
                                 .tls = config.tls,
                                 .tls_options = config.tls_options,
                                 .tls_context = nullptr};
        std::string error;
        if (config.tls != TlsMode::none) {
            compiled.smtp.tls_context = tls::make_client_context(config.tls_options, error);
        }
        if (config.auth) compiled.smtp_login = CredentialSource::load(*config.auth, error);
        EXPECT_TRUE(error.empty()) << error;
        return compiled;
    }

    // Runs the connect probe once; `stop_after` requests a stop that long after the start.
    static ProbeResult probe(const TargetConfig& config,
                             std::optional<std::chrono::milliseconds> stop_after = std::nullopt) {
        return probe(compile(config), &run_connect_probe, stop_after);
    }

    // `busy`: the loop is kept busy (as by other runs) for busy->second from busy->first after
    // the start.
    using ProbeFunction = asio::awaitable<Outcome> (*)(ProbeRun run);

    static ProbeResult probe(
        const CompiledTarget& compiled, ProbeFunction run,
        std::optional<std::chrono::milliseconds> stop_after = std::nullopt,
        std::optional<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>> busy =
            std::nullopt) {
        asio::io_context io;
        asio::steady_timer busy_timer(io);
        if (busy) {
            busy_timer.expires_after(busy->first);
            busy_timer.async_wait(
                [&](boost::system::error_code) { std::this_thread::sleep_for(busy->second); });
        }
        ProbeResult result;
        Transcript transcript;
        StopSignal stop;
        asio::steady_timer stopper(io);
        if (stop_after) {
            stopper.expires_after(*stop_after);
            stopper.async_wait([&](boost::system::error_code ec) {
                if (!ec) stop.request();
            });
        }
        const auto started = Clock::now();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const std::function<void()> waiting;
                result.outcome = co_await run(ProbeRun{compiled, started + compiled.config.timeout,
                                                       result.metrics, transcript, stop, waiting});
                stopper.cancel();
            },
            asio::detached);
        io.run();
        result.elapsed = Clock::now() - started;
        result.transcript = transcript.to_text();
        return result;
    }

    static std::optional<std::chrono::nanoseconds> phase(const ProbeResult& result, Phase which) {
        return result.metrics.phase_durations[static_cast<std::size_t>(which)];
    }

    TestPki pki_;
    std::filesystem::path dir_;
    std::string ca_file_;
};

void expect_failure(const ProbeResult& result, FailureReason reason) {
    ASSERT_TRUE(result.outcome.failure) << result.transcript;
    EXPECT_EQ(to_string(*result.outcome.failure), to_string(reason))
        << result.outcome.detail << "\n"
        << result.transcript;
}

TEST_F(SessionTest, HealthyStartTlsSessionTimesEveryPhase) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(true),
                          {.tls = pki_.issue({}), .implicit_tls = false});
    const auto result = probe(target(server.port(), TlsMode::starttls));
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    for (const Phase each : {Phase::resolve, Phase::connect, Phase::banner, Phase::ehlo,
                             Phase::starttls, Phase::tls_handshake, Phase::quit}) {
        EXPECT_TRUE(phase(result, each)) << to_string(each);
    }
    EXPECT_FALSE(phase(result, Phase::auth));
    EXPECT_EQ(result.metrics.tls_version, "TLSv1.3");
    ASSERT_TRUE(result.metrics.cert_not_after);
    EXPECT_GT(*result.metrics.cert_not_after, std::chrono::system_clock::now() + 24h);
    server.wait_for_disconnects(1s);
    const auto lines = server.received_lines();
    EXPECT_EQ(lines, (std::vector<std::string>{"EHLO probe.example", "STARTTLS",
                                               "EHLO probe.example", "QUIT"}));
}

TEST_F(SessionTest, ABannerThatArrivesWhileTheLoopIsBusyIsTimedByItsArrival) {
    FakeSmtpServer server({delay(50ms), send("220 fake ESMTP\r\n"), expect_line("EHLO"),
                           send("250 fake\r\n"), expect_line("QUIT"), send("221 bye\r\n")});
    // The banner comes at 50 ms, while the loop is busy from 20 to 120 ms.
    const auto result = probe(compile(target(server.port(), TlsMode::none)), &run_connect_probe,
                              std::nullopt, std::pair{20ms, 100ms});
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    EXPECT_GE(result.elapsed, 120ms);
    ASSERT_TRUE(phase(result, Phase::banner));
    EXPECT_GE(*phase(result, Phase::banner), 45ms);
    EXPECT_LT(*phase(result, Phase::banner), 80ms)
        << "timed when the loop got to it, not on arrival";
}

TEST_F(SessionTest, ImplicitTls) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false),
                          {.tls = pki_.issue({}), .implicit_tls = true});
    const auto result = probe(target(server.port(), TlsMode::implicit));
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    EXPECT_TRUE(phase(result, Phase::tls_handshake));
    EXPECT_FALSE(phase(result, Phase::starttls));
}

TEST_F(SessionTest, SilentServerIsBannerTimeoutWithinTheTimeout) {
    FakeSmtpServer server({hang()});
    const auto result = probe(target(server.port(), TlsMode::none, 300ms));
    expect_failure(result, FailureReason::banner_timeout);
    EXPECT_LT(result.elapsed, 800ms);
    ASSERT_TRUE(phase(result, Phase::banner));
    EXPECT_GE(*phase(result, Phase::banner), 250ms);
}

// A listener whose accept queue is full drops new SYNs (Linux): the connect is neither completed
// nor refused, as behind a firewall that drops, and that is a connect timeout.
TEST_F(SessionTest, AConnectNeitherAnsweredNorRefusedIsConnectTimeout) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto* const name = reinterpret_cast<sockaddr*>(&address);
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(listener, name, length), 0);
    ASSERT_EQ(::listen(listener, 0), 0);
    ASSERT_EQ(::getsockname(listener, name, &length), 0);
    std::vector<int> queued;  // connections nobody accepts, until the queue is full
    for (int i = 0; i < 4; ++i) {
        queued.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        (void)::connect(queued.back(), name, length);  // non-blocking: it stays in progress
    }
    std::this_thread::sleep_for(50ms);
    const auto result = probe(target(ntohs(address.sin_port), TlsMode::none, 300ms));
    expect_failure(result, FailureReason::connect_timeout);
    EXPECT_LT(result.elapsed, 800ms);
    for (const int socket : queued) ::close(socket);
    ::close(listener);
}

TEST_F(SessionTest, DrippedBannerIsClassifiedWithinTheTimeout) {
    FakeSmtpServer server({send_dripped("220 " + std::string(200, 'x') + "\r\n", 10ms)});
    const auto result = probe(target(server.port(), TlsMode::none, 300ms));
    expect_failure(result, FailureReason::banner_timeout);
    EXPECT_LT(result.elapsed, 800ms);
}

TEST_F(SessionTest, EndlessLineIsProtocolNotUnboundedMemory) {
    FakeSmtpServer server({send("220 "), send_forever(std::string(4096, 'x'))});
    const auto result = probe(target(server.port(), TlsMode::none));
    expect_failure(result, FailureReason::protocol);
    EXPECT_NE(result.outcome.detail.find("longer than"), std::string::npos)
        << result.outcome.detail;
}

TEST_F(SessionTest, EndlessMultiLineReplyIsProtocol) {
    FakeSmtpServer server({send("220 mx\r\n"), expect_line("EHLO"), send_forever("250-more\r\n")});
    const auto result = probe(target(server.port(), TlsMode::none));
    expect_failure(result, FailureReason::protocol);
    EXPECT_NE(result.outcome.detail.find("lines"), std::string::npos) << result.outcome.detail;
}

TEST_F(SessionTest, Banner421IsRejectedWithoutQuit) {
    FakeSmtpServer server({send("421 4.3.2 too busy\r\n"), hang()});
    const auto result = probe(target(server.port(), TlsMode::none));
    expect_failure(result, FailureReason::banner_rejected);
    EXPECT_NE(result.outcome.detail.find("421 4.3.2 too busy"), std::string::npos);
    server.wait_for_disconnects(1s);
    EXPECT_TRUE(server.received_lines().empty());
}

TEST_F(SessionTest, GarbageIsProtocol) {
    FakeSmtpServer server({send("HTTP/1.0 200 OK\r\n\r\n"), hang()});
    expect_failure(probe(target(server.port(), TlsMode::none)), FailureReason::protocol);
}

TEST_F(SessionTest, ClosedBeforeBannerIsClosed) {
    FakeSmtpServer server({close()});
    expect_failure(probe(target(server.port(), TlsMode::none)), FailureReason::closed);
}

TEST_F(SessionTest, SlowEhloIsTimeout) {
    FakeSmtpServer server({send("220 mx\r\n"), expect_line("EHLO"), hang()});
    const auto result = probe(target(server.port(), TlsMode::none, 300ms));
    expect_failure(result, FailureReason::timeout);
    EXPECT_NE(result.outcome.detail.find("ehlo"), std::string::npos);
}

TEST_F(SessionTest, InjectedPlaintextAfterStartTlsIsRefused) {
    FakeSmtpServer server(
        {send("220 mx\r\n"), expect_line("EHLO"), send("250-mx\r\n250 STARTTLS\r\n"),
         expect_line("STARTTLS"), send("220 go\r\n250-injected\r\n"), hang()},
        {.tls = pki_.issue({}), .implicit_tls = false});
    const auto result = probe(target(server.port(), TlsMode::starttls));
    // Both lines may arrive in one read or two: either way TLS must never start.
    expect_failure(result, FailureReason::protocol);
    EXPECT_FALSE(phase(result, Phase::tls_handshake));
}

// A server that keeps the socket open and says nothing where TLS begins (docs/testing.md,
// "Hostile servers"): STARTTLS unanswered, silence after its 220, a handshake stalled after the
// ClientHello. Each is `timeout` at the deadline, in the phase it stalled in.
TEST_F(SessionTest, SilenceWhereTlsBeginsIsTimeoutAtTheDeadline) {
    struct Case {
        const char* name;
        std::vector<ScriptStep> script;
        TlsMode tls;
        const char* phase;
    };
    const std::vector<Case> cases{
        {"STARTTLS unanswered",
         {send("220 mx\r\n"), expect_line("EHLO"), send("250-mx\r\n250 STARTTLS\r\n"),
          expect_line("STARTTLS"), hang()},
         TlsMode::starttls,
         "starttls"},
        {"silent after 220 to STARTTLS",
         {send("220 mx\r\n"), expect_line("EHLO"), send("250-mx\r\n250 STARTTLS\r\n"),
          expect_line("STARTTLS"), send("220 2.0.0 Ready to start TLS\r\n"), hang()},
         TlsMode::starttls,
         "tls_handshake"},
        {"stalled after ClientHello", {hang()}, TlsMode::implicit, "tls_handshake"}};
    for (const Case& each : cases) {
        SCOPED_TRACE(each.name);
        FakeSmtpServer server(each.script);
        const auto result = probe(target(server.port(), each.tls, 300ms));
        expect_failure(result, FailureReason::timeout);
        EXPECT_NE(result.outcome.detail.find(each.phase), std::string::npos)
            << result.outcome.detail;
        EXPECT_GE(result.elapsed, 300ms);
        EXPECT_LT(result.elapsed, 1s);
    }
}

struct CertificateCase {
    const char* name;
    FailureReason reason;
};

void PrintTo(const CertificateCase& certificate_case, std::ostream* out) {
    *out << certificate_case.name;
}

class SessionCertificates : public SessionTest,
                            public testing::WithParamInterface<CertificateCase> {};

TEST_P(SessionCertificates, FailureIsClassifiedAndExpiryStillKnown) {
    const std::string_view name = GetParam().name;
    const auto now = std::chrono::system_clock::now();
    KeyPair key;
    TargetConfig config = target(0, TlsMode::starttls);
    if (name == "untrusted") {
        key = TestPki::self_signed({});
    } else if (name == "expired") {
        key = pki_.issue({.not_before = now - 48h, .not_after = now - 24h});
    } else if (name == "wrong_address") {  // the target is 127.0.0.1, an IP literal
        key = pki_.issue({.ip_addresses = {"127.0.0.2"}});
    } else {
        key = pki_.issue({});
        config.tls_options.server_name = "mx.elsewhere.example";
    }
    FakeSmtpServer server(FakeSmtpServer::healthy_script(true),
                          {.tls = key, .implicit_tls = false});
    config.port = server.port();
    const auto result = probe(config);
    expect_failure(result, GetParam().reason);
    EXPECT_TRUE(result.metrics.cert_not_after)
        << "the expiry is exported even when verification fails";
    EXPECT_NE(result.outcome.detail.find("certificate"), std::string::npos)
        << result.outcome.detail;
    // What was negotiated and what the server showed are known too.
    EXPECT_EQ(result.metrics.tls_version, "TLSv1.3");
    EXPECT_TRUE(result.metrics.tls_cipher && !result.metrics.tls_cipher->empty());
    ASSERT_TRUE(result.metrics.certificate);
    const CertificateFacts& certificate = *result.metrics.certificate;
    EXPECT_NE(certificate.subject.find("CN="), std::string::npos) << certificate.subject;
    EXPECT_EQ(certificate.issuer == certificate.subject, name == "untrusted")
        << "self-signed: its own issuer; else the test CA's";
    const std::vector<std::string> expected_names =
        name == "wrong_address" ? std::vector<std::string>{"localhost", "127.0.0.2"}
                                : std::vector<std::string>{"localhost", "127.0.0.1", "::1"};
    EXPECT_EQ(certificate.alt_names, expected_names);
    EXPECT_EQ(certificate.not_after < now, name == "expired");
    EXPECT_LT(certificate.not_before, certificate.not_after);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SessionCertificates,
    testing::Values(CertificateCase{"untrusted", FailureReason::tls_cert_untrusted},
                    CertificateCase{"expired", FailureReason::tls_cert_expired},
                    CertificateCase{"wrong_name", FailureReason::tls_cert_hostname},
                    CertificateCase{"wrong_address", FailureReason::tls_cert_hostname}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST_F(SessionTest, InsecureSkipVerifyAcceptsASelfSignedCertificate) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(true),
                          {.tls = TestPki::self_signed({}), .implicit_tls = false});
    auto config = target(server.port(), TlsMode::starttls);
    config.tls_options.insecure_skip_verify = true;
    const auto result = probe(config);
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    EXPECT_TRUE(result.metrics.cert_not_after);
}

// A server that aborts the handshake after sending its certificate (OpenSMTPD 6.8 on OpenSSL 3
// answers every handshake with alert 80): the handshake failed, not the certificate, and the
// detail says what the server said, whether the certificate was verified or not. Verification
// that refuses the certificate first still names the certificate.
TEST_F(SessionTest, AHandshakeTheServerAbortsIsTlsHandshakeVerifiedOrNot) {
    struct Case {
        const char* name;
        KeyPair key;
        bool skip_verify;
        FailureReason reason;
        const char* detail;
    };
    const std::vector<Case> cases{
        {"trusted, verified", pki_.issue({}), false, FailureReason::tls_handshake,
         "TLS handshake: tlsv1 alert internal error"},
        {"self-signed, not verified", TestPki::self_signed({}), true, FailureReason::tls_handshake,
         "TLS handshake: tlsv1 alert internal error"},
        {"self-signed, verified", TestPki::self_signed({}), false,
         FailureReason::tls_cert_untrusted, "certificate: self-signed certificate"}};
    for (const Case& each : cases) {
        SCOPED_TRACE(each.name);
        FakeSmtpServer server(
            {send("220 mx\r\n"), expect_line("EHLO"), send("250-mx\r\n250 STARTTLS\r\n"),
             expect_line("STARTTLS"), send("220 2.0.0 go ahead\r\n"), abort_tls()},
            {.tls = each.key, .implicit_tls = false});
        auto config = target(server.port(), TlsMode::starttls);
        config.tls_options.insecure_skip_verify = each.skip_verify;
        const auto result = probe(config);
        expect_failure(result, each.reason);
        EXPECT_NE(result.outcome.detail.find(each.detail), std::string::npos)
            << result.outcome.detail;
        EXPECT_TRUE(result.metrics.cert_not_after) << "the certificate came before the abort";
    }
}

// With PIPELINING each reply closes its command's phase when it arrives: the run records the
// same phases whether the server's replies come together or apart, and they add up to the run.
TEST_F(SessionTest, PipelinedPhasesAreTheSameWhetherRepliesComeTogetherOrApart) {
    const auto run_with_replies = [](bool apart) {
        std::vector<ScriptStep> script{send("220 mx\r\n"),
                                       expect_line("EHLO"),
                                       send("250-mx\r\n250 PIPELINING\r\n"),
                                       expect_line("MAIL FROM"),
                                       expect_line("RCPT TO"),
                                       expect_line("RCPT TO"),
                                       delay(60ms)};
        if (apart) {
            for (const auto& step :
                 {send("250 2.1.0 Ok\r\n"), delay(60ms), send("250 2.1.5 Ok\r\n"), delay(60ms),
                  send("250 2.1.5 Ok\r\n")}) {
                script.push_back(step);
            }
        } else {
            script.push_back(send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"));
        }
        for (const auto& step :
             {expect_line("DATA"), delay(60ms), send("354 go ahead\r\n"), expect_line("Subject"),
              expect_line(""), expect_line("body"), expect_line("."), delay(60ms),
              send("250 2.0.0 Ok: queued as 4Q9xYz1ABC\r\n"), expect_line("QUIT"),
              send("221 bye\r\n"), close()}) {
            script.push_back(step);
        }
        FakeSmtpServer server(script);
        ProbeResult result;
        Transcript transcript;
        StopSignal stop;
        smtp::Dialog dialog({TlsMode::none, "probe.example", std::nullopt,
                             smtp::TransactionRequest{.from = "canary@example.org",
                                                      .to = {"a@example.test", "b@example.test"},
                                                      .message = "Subject: x\r\n\r\nbody\r\n.\r\n",
                                                      .rcpt_only = false}},
                            transcript);
        const Endpoint endpoint{"127.0.0.1", server.port(), TlsMode::none, {}, nullptr};
        asio::io_context io;
        const auto started = Clock::now();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const SessionRun run{started + 5s, result.metrics, transcript, stop};
                result.outcome = co_await smtp::run_dialog(endpoint, run, dialog);
            },
            asio::detached);
        io.run();
        result.elapsed = Clock::now() - started;
        result.transcript = transcript.to_text();
        return result;
    };
    const auto recorded = [](const ProbeResult& result) {
        std::vector<Phase> phases;
        for (const Phase each : kAllPhases) {
            if (phase(result, each)) phases.push_back(each);
        }
        return phases;
    };
    const auto apart = run_with_replies(true);
    const auto together = run_with_replies(false);
    for (const auto* result : {&apart, &together}) {
        ASSERT_TRUE(result->outcome.success()) << result->outcome.detail << result->transcript;
        EXPECT_EQ(recorded(*result), (std::vector{Phase::resolve, Phase::connect, Phase::banner,
                                                  Phase::ehlo, Phase::mail, Phase::rcpt,
                                                  Phase::data, Phase::data_end, Phase::quit}));
        std::chrono::nanoseconds sum{};
        for (const Phase each : kAllPhases) sum += phase(*result, each).value_or(0ns);
        // What is in no phase is the agent's own work between them.
        EXPECT_LE(sum, result->elapsed);
        EXPECT_GE(sum, result->elapsed * 9 / 10) << "waits left out of every phase";
        EXPECT_GE(*phase(*result, Phase::mail), 55ms);
        EXPECT_GE(*phase(*result, Phase::data), 55ms) << "DATA waits for the RCPT replies";
        EXPECT_GE(*phase(*result, Phase::data_end), 55ms);
    }
    EXPECT_GE(*phase(apart, Phase::rcpt), 110ms) << "from the MAIL reply to the last RCPT reply";
    EXPECT_LT(*phase(together, Phase::rcpt), 20ms);
}

TEST_F(SessionTest, StopSaysQuitWhenInStep) {
    FakeSmtpServer server({send("220 mx\r\n"), expect_line("EHLO"), hang()});
    const auto result = probe(target(server.port(), TlsMode::none, 5s), 200ms);
    EXPECT_TRUE(result.outcome.cancelled);
    EXPECT_FALSE(result.outcome.failure);
    EXPECT_LT(result.elapsed, 1s);
    server.wait_for_disconnects(1s);
    EXPECT_EQ(server.received_lines(), (std::vector<std::string>{"EHLO probe.example", "QUIT"}));
}

TEST_F(SessionTest, TriesEveryAddressInOrder) {
    // A name with several addresses, the first of which refuses: the next one must be tried.
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false));
    const auto loopback = asio::ip::make_address("127.0.0.1");
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    Transcript transcript;
    boost::system::error_code ec = asio::error::fault;
    asio::co_spawn(io,
                   connect_in_order(socket, {{loopback, 1}, {loopback, server.port()}}, transcript,
                                    Clock::now() + 5s, ec),
                   asio::detached);
    io.run();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(socket.is_open());
    const auto text = transcript.to_text();
    EXPECT_NE(text.find("connect to 127.0.0.1:1 failed: Connection refused"), std::string::npos)
        << text;
    EXPECT_NE(text.find("connected to 127.0.0.1:" + std::to_string(server.port())),
              std::string::npos)
        << text;
}

TEST_F(SessionTest, LastErrorWhenNoAddressAccepts) {
    const auto loopback = asio::ip::make_address("127.0.0.1");
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    Transcript transcript;
    boost::system::error_code ec;
    asio::co_spawn(
        io,
        connect_in_order(socket, {{loopback, 1}, {loopback, 2}}, transcript, Clock::now() + 5s, ec),
        asio::detached);
    io.run();
    EXPECT_EQ(ec, asio::error::connection_refused);
    EXPECT_NE(transcript.to_text().find("127.0.0.1:2 failed"), std::string::npos);
}

// A target that logs in as canary@example.test with tokens from `endpoint`.
CompiledTarget with_refresh_flow(CompiledTarget compiled, const FakeTokenEndpoint& endpoint,
                                 const std::filesystem::path& dir, const std::string& ca_file) {
    std::ofstream(dir / "refresh-token") << "1//refresh\n";
    AuthConfig& auth = compiled.config.auth.emplace();
    auth.username = "canary@example.test";
    auth.token_url = endpoint.url();
    auth.client_id = "client";
    auth.refresh_token_file = (dir / "refresh-token").string();
    auth.token_ca_file = ca_file;
    std::string problem;
    compiled.smtp_login = CredentialSource::load(auth, problem);
    EXPECT_TRUE(compiled.smtp_login.has_value()) << problem;
    return compiled;
}

TEST_F(SessionTest, AuthWithTheRefreshTokenFlowLogsInWithXoauth2) {
    FakeTokenEndpoint endpoint(pki_.issue({}),
                               {{200, R"({"access_token":"ya29.fresh","expires_in":3600})"}});
    FakeSmtpServer server(
        {send("220 mx\r\n"), expect_line("EHLO"), send("250-mx\r\n250 AUTH PLAIN XOAUTH2\r\n"),
         expect_line("AUTH XOAUTH2 " + sasl::xoauth2_response("canary@example.test", "ya29.fresh")),
         send("235 2.7.0 Accepted\r\n"), expect_line("QUIT"), send("221 bye\r\n")},
        {.tls = pki_.issue({}), .implicit_tls = true});
    const auto compiled = with_refresh_flow(compile(target(server.port(), TlsMode::implicit)),
                                            endpoint, dir_, ca_file_);
    const auto result = probe(compiled, &run_auth_probe);
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    EXPECT_EQ(endpoint.requests().size(), 1u);
    EXPECT_EQ(result.transcript.find("ya29.fresh"), std::string::npos);
    EXPECT_NE(result.transcript.find("C: AUTH XOAUTH2 <redacted>"), std::string::npos);
}

TEST_F(SessionTest, AuthFailsWithOauthTokenWhenTheEndpointRefuses) {
    FakeTokenEndpoint endpoint(pki_.issue({}), {{400, R"({"error":"invalid_grant"})"}});
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false));
    const auto compiled =
        with_refresh_flow(compile(target(server.port(), TlsMode::none)), endpoint, dir_, ca_file_);
    const auto result = probe(compiled, &run_auth_probe);
    expect_failure(result, FailureReason::oauth_token);
    EXPECT_NE(result.outcome.detail.find("invalid_grant"), std::string::npos)
        << result.outcome.detail;
    EXPECT_EQ(server.connections(), 0) << "no token, no connection";
}

TEST_F(SessionTest, ExpectRejectFailsWhenTheServerAcceptsTheCredentials) {
    FakeSmtpServer server({send("220 mx\r\n"), expect_line("EHLO"),
                           send("250-mx\r\n250 AUTH PLAIN\r\n"), expect_line("AUTH PLAIN "),
                           send("235 2.7.0 ok\r\n"), expect_line("QUIT"), send("221 bye\r\n")},
                          {.tls = pki_.issue({}), .implicit_tls = true});
    auto config = target(server.port(), TlsMode::implicit);
    config.auth = AuthConfig{};
    config.auth->username = "canary@example.test";
    config.expect = Expectation::reject;
    std::ofstream(dir_ / "password") << "should-have-been-refused\n";
    config.auth->password_file = (dir_ / "password").string();
    auto compiled = compile(config);
    const auto result = probe(compiled, &run_auth_probe);
    expect_failure(result, FailureReason::auth_accepted);
}

// smtp.office365.com as it answers (support/provider_transcripts.hpp), its login refused with
// `refusal`.
std::vector<ScriptStep> microsoft_login_refused(const std::string& refusal) {
    namespace p = providers;
    return {send(p::kMicrosoftBanner),
            expect_line("EHLO"),
            send(p::kMicrosoftEhlo),
            expect_line("STARTTLS"),
            send(p::kMicrosoftStartTls),
            start_tls(),
            expect_line("EHLO"),
            send(p::kMicrosoftEhloAfterTls),
            expect_line("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect_line(""),
            send("334 UGFzc3dvcmQ6\r\n"),
            expect_line(""),
            send(refusal),
            expect_line("QUIT"),
            send(p::kMicrosoftQuit)};
}

// A negative test (expect = "reject") passes on a wrong password, never on SMTP AUTH turned off
// for the tenant: then nobody can submit mail, with any password.
TEST_F(SessionTest, ExpectRejectIsNotSatisfiedByAPolicyRefusal) {
    std::ofstream(dir_ / "password") << "deliberately-wrong\n";
    const auto negative_test_against = [&](const std::string& refusal) {
        FakeSmtpServer server(microsoft_login_refused(refusal), {.tls = pki_.issue({})});
        auto config = target(server.port(), TlsMode::starttls);
        config.auth = AuthConfig{};
        config.auth->username = "canary@example.test";
        config.auth->password_file = (dir_ / "password").string();
        config.expect = Expectation::reject;
        return probe(compile(config), &run_auth_probe);
    };
    const auto disabled = negative_test_against(providers::kMicrosoftSmtpAuthDisabled);
    expect_failure(disabled, FailureReason::auth_disabled);
    EXPECT_NE(disabled.transcript.find("proves nothing about these credentials"), std::string::npos)
        << disabled.transcript;
    const auto wrong = negative_test_against(providers::kMicrosoftWrongPassword);
    EXPECT_TRUE(wrong.outcome.success()) << wrong.outcome.detail << "\n" << wrong.transcript;
}

TEST_F(SessionTest, AnUnansweredQuitDoesNotFailARunThatSucceeded) {
    // Everything answered but QUIT: the run succeeds after a short grace, not the whole timeout.
    FakeSmtpServer server(
        {send("220 mx\r\n"), expect_line("EHLO"), send("250 mx\r\n"), expect_line("QUIT"), hang()});
    const auto result = probe(target(server.port(), TlsMode::none, 5s));
    EXPECT_TRUE(result.outcome.success()) << result.outcome.detail << "\n" << result.transcript;
    EXPECT_LT(result.elapsed, 2500ms);
    EXPECT_NE(result.transcript.find("no clean answer to QUIT"), std::string::npos)
        << result.transcript;
}

TEST_F(SessionTest, NoConnectionIsTriedOncePastTheDeadline) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false));
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    Transcript transcript;
    boost::system::error_code ec;
    asio::co_spawn(io,
                   connect_in_order(socket, {{asio::ip::make_address("127.0.0.1"), server.port()}},
                                    transcript, Clock::now() - 1ms, ec),
                   asio::detached);
    io.run();
    EXPECT_EQ(ec, asio::error::timed_out);
    EXPECT_FALSE(socket.is_open());
}

TEST_F(SessionTest, ServerBytesInTheFailureDetailAreEscaped) {
    FakeSmtpServer server(
        {send("554 no \xff\x1b[31mred\r\n"), expect_line("QUIT"), send("221 bye\r\n")});
    const auto result = probe(target(server.port(), TlsMode::none));
    expect_failure(result, FailureReason::banner_rejected);
    EXPECT_NE(result.outcome.detail.find("no \\xff\\x1b[31mred"), std::string::npos)
        << result.outcome.detail;
}

TEST(BlockingWork, TheCallerStopsWaitingAtItsDeadline) {
    asio::io_context io;
    std::optional<int> answer = 7;
    const auto started = Clock::now();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            std::function<int()> slow_lookup = [] {
                std::this_thread::sleep_for(600ms);  // like getaddrinfo on a dead DNS server
                return 1;
            };
            answer = co_await run_blocking<int>(std::move(slow_lookup), Clock::now() + 100ms);
        },
        asio::detached);
    io.run();
    EXPECT_FALSE(answer);
    EXPECT_LT(Clock::now() - started, 400ms);
    // Keep the loop alive until the worker's late result has landed (and been dropped).
    const auto keep_alive = asio::make_work_guard(io);
    io.restart();
    io.run_for(1s);
}

TEST_F(SessionTest, UnresolvableHostIsDns) {
    auto config = target(25, TlsMode::none);
    config.host = "no-such-host.invalid";
    expect_failure(probe(config), FailureReason::dns);
}

}  // namespace
}  // namespace mailcanary::test
