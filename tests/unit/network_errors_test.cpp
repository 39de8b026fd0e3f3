// Every network failure at every turn of a conversation, for the SMTP and IMAP sessions: the
// connection closed, reset, or silent until the deadline, each with the reason for its phase and
// within the run's time (support/network_errors).
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "protocols/imap_session.hpp"
#include "protocols/smtp_session.hpp"
#include "protocols/tls_client.hpp"
#include "support/network_errors.hpp"
#include "support/test_pki.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class NetworkErrors : public testing::Test {
  protected:
    NetworkErrors() {
        dir_ = std::filesystem::temp_directory_path() /
               ("mailcanary-network-errors-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        TlsOptions options;
        options.ca_file = pki_.write_ca_file(dir_);
        std::string error;
        endpoint_.tls_options = options;
        endpoint_.tls_context = tls::make_client_context(options, error);
        EXPECT_EQ(error, "");
    }

    // The client's side of every run: loopback, the test CA, the given port and TLS mode.
    Endpoint endpoint(uint16_t port, TlsMode tls) const {
        Endpoint endpoint = endpoint_;
        endpoint.host = "127.0.0.1";
        endpoint.port = port;
        endpoint.tls = tls;
        return endpoint;
    }

    TestPki pki_;
    std::filesystem::path dir_;
    Endpoint endpoint_;
};

const std::string kMessage = "Subject: canary\r\n\r\nbody\r\n.\r\n";

TEST_F(NetworkErrors, SmtpStartTlsAuthAndTransaction) {
    const auto run = [this](uint16_t port, std::chrono::milliseconds timeout) {
        smtp::DialogOptions options{TlsMode::starttls, "probe.example",
                                    smtp::AuthRequest{.mechanism = std::nullopt,
                                                      .username = "probe@example.test",
                                                      .secret = "s3cret",
                                                      .secret_is_token = false,
                                                      .allow_plaintext = false,
                                                      .host = "127.0.0.1",
                                                      .port = port},
                                    smtp::TransactionRequest{.from = "canary@example.test",
                                                             .to = {"probe@example.test"},
                                                             .message = kMessage,
                                                             .rcpt_only = false}};
        asio::io_context io;
        Transcript transcript;
        RunMetrics metrics;
        StopSignal stop;
        smtp::Dialog dialog(std::move(options), transcript);
        Outcome outcome;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                outcome = co_await smtp::run_dialog(
                    endpoint(port, TlsMode::starttls),
                    SessionRun{Clock::now() + timeout, metrics, transcript, stop}, dialog);
            },
            asio::detached);
        io.run();
        return RunResult{outcome.failure, transcript.to_text()};
    };
    check_network_errors(
        {.turns = {{Phase::banner, {}, send("220 mx ESMTP\r\n")},
                   {Phase::ehlo,
                    {expect_line("EHLO")},
                    send("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n")},
                   {Phase::starttls, {expect_line("STARTTLS")}, send("220 2.0.0 go ahead\r\n")},
                   {Phase::tls_handshake, {}, start_tls()},
                   {Phase::ehlo,
                    {expect_line("EHLO")},
                    send("250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n")},
                   {Phase::auth, {expect_line("AUTH PLAIN ")}, send("235 2.7.0 ok\r\n")},
                   // Pipelined: MAIL and RCPT come at once, their replies one by one; DATA
                   // waits for them.
                   {Phase::mail,
                    {expect_line("MAIL FROM"), expect_line("RCPT TO")},
                    send("250 2.1.0 ok\r\n")},
                   {Phase::rcpt, {}, send("250 2.1.5 ok\r\n")},
                   {Phase::data, {expect_line("DATA")}, send("354 go ahead\r\n")},
                   {Phase::data_end,
                    {expect_line("Subject"), expect_line(""), expect_line("body"),
                     expect_line(".")},
                    send("250 2.0.0 Ok: queued as 4Q9xYz1ABC\r\n")},
                   {Phase::quit, {expect_line("QUIT")}, send("221 2.0.0 bye\r\n")}},
         .server = {.tls = pki_.issue({}), .implicit_tls = false},
         .run = run,
         // Once QUIT is sent the result is known: a rude goodbye does not fail the run.
         .expected = [](Phase phase, NetworkFault fault) -> std::optional<FailureReason> {
             if (phase == Phase::quit) return std::nullopt;
             return usual_reason(phase, fault);
         }});
}

// Opens, selects INBOX (timed as select) and logs out, as an IMAP probe would.
RunResult open_select_logout(Endpoint endpoint, imap::ClientOptions options,
                             std::chrono::milliseconds timeout) {
    asio::io_context io;
    Transcript transcript;
    RunMetrics metrics;
    imap::Session session(io.get_executor(), transcript, &metrics);
    std::optional<FailureReason> failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            const auto deadline = Clock::now() + timeout;
            if (!co_await session.open(endpoint, options, deadline)) {
                failure = session.failure().reason;
                co_return;
            }
            const auto selected = co_await session.execute("SELECT INBOX", deadline, Phase::select);
            if (!selected) {  // NOLINT(bugprone-branch-clone): as a failed LOGOUT, by its reason
                failure = session.failure().reason;
            } else if (!selected->ok()) {
                failure = FailureReason::select_rejected;
            } else if (!co_await session.logout(deadline)) {
                failure = session.failure().reason;
            }
        },
        asio::detached);
    io.run();
    return {failure, transcript.to_text()};
}

std::vector<Turn> select_and_logout(int first_tag) {
    const std::string select = "C" + std::to_string(first_tag);
    const std::string logout = "C" + std::to_string(first_tag + 1);
    return {{Phase::select,
             {expect_line(select + " SELECT INBOX")},
             send("* 2 EXISTS\r\n* OK [UIDVALIDITY 3] ok\r\n" + select +
                  " OK [READ-WRITE] Select completed.\r\n")},
            {Phase::logout,
             {expect_line(logout + " LOGOUT")},
             send("* BYE Logging out\r\n" + logout + " OK Logout completed.\r\n")}};
}

TEST_F(NetworkErrors, ImapStartTlsLoginSelectLogout) {
    imap::ClientOptions options;
    options.tls = TlsMode::starttls;
    options.credentials.username = "probe@example.test";
    options.credentials.secret = "s3cret";
    std::vector<Turn> turns{
        {Phase::greeting, {}, send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n")},
        {Phase::starttls, {expect_line("C1 STARTTLS")}, send("C1 OK Begin TLS negotiation.\r\n")},
        {Phase::tls_handshake, {}, start_tls()},
        {Phase::capability,
         {expect_line("C2 CAPABILITY")},
         send("* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\nC2 OK Capability completed.\r\n")},
        {Phase::auth,
         {expect_line("C3 LOGIN")},
         send("C3 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")}};
    const auto rest = select_and_logout(4);
    turns.insert(turns.end(), rest.begin(), rest.end());
    check_network_errors({.turns = turns,
                          .server = {.tls = pki_.issue({}), .implicit_tls = false},
                          .run = [&](uint16_t port, std::chrono::milliseconds timeout) {
                              return open_select_logout(endpoint(port, TlsMode::starttls), options,
                                                        timeout);
                          }});
}

TEST_F(NetworkErrors, ImapAuthenticateInTwoSteps) {
    // Without SASL-IR the server asks for the credentials with a continuation.
    imap::ClientOptions options;
    options.tls = TlsMode::none;
    options.allow_plaintext = true;
    options.credentials.username = "probe@example.test";
    options.credentials.secret = "s3cret";
    std::vector<Turn> turns{
        {Phase::greeting, {}, send("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n")},
        {Phase::auth, {expect_line("C1 AUTHENTICATE PLAIN")}, send("+ \r\n")},
        {Phase::auth, {expect_line("")}, send("C1 OK [CAPABILITY IMAP4rev1] Logged in\r\n")}};
    const auto rest = select_and_logout(2);
    turns.insert(turns.end(), rest.begin(), rest.end());
    check_network_errors({.turns = turns,
                          .server = {},
                          .run = [&](uint16_t port, std::chrono::milliseconds timeout) {
                              return open_select_logout(endpoint(port, TlsMode::none), options,
                                                        timeout);
                          }});
}

}  // namespace
}  // namespace mailcanary::test
