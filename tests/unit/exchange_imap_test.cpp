// The agent against a server that behaves like Exchange Online (support/fake_exchange_imap, whose
// sources it cites): a round trip whose message lands in "Junk Email" is found and removed by
// COPY to "Deleted Items", \Deleted and UID EXPUNGE, as a server without MOVE or SPECIAL-USE
// needs; a throttled login is `throttled`, not a refused one, and the next session waits for
// the backoff the server asked for; prompt checks pause while the account is throttled; an
// account's sessions stay within their bound; and the imap probe classifies the same way.
#include <utility>

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <functional>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "common/stop_signal.hpp"
#include "probes/mailbox_tracker.hpp"
#include "probes/registry.hpp"
#include "protocols/token.hpp"
#include "support/fake_exchange_imap.hpp"
#include "support/files.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::FakeExchangeImap;

struct NoEvents final : RoundtripEvents {
    void message_late(const std::string& /*target*/) override {}
    void leftover_removed(const std::string& /*mailbox*/) override {}
    void pending_changed(const std::string& /*target*/, std::size_t /*pending*/) override {}
};

bool sent(const FakeExchangeImap& server, const std::string& part) {
    const auto lines = server.received_lines();
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return line.find(part) != std::string::npos;
    });
}

std::size_t count_sent(const FakeExchangeImap& server, const std::string& part) {
    const auto lines = server.received_lines();
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(),
        [&](const std::string& line) { return line.find(part) != std::string::npos; }));
}

class ExchangeTest : public testing::Test {
  protected:
    ExchangeTest() : password_file_(dir_.write("password", "s3cret")) {}

    std::shared_ptr<MailboxTracker> tracker(std::shared_ptr<ImapAccount> account,
                                            bool use_idle = true) {
        MailboxSettings settings;
        settings.endpoint = Endpoint{"127.0.0.1", server_.port(), TlsMode::none, {}, nullptr};
        settings.client.tls = TlsMode::none;
        settings.client.allow_plaintext = true;
        settings.client.credentials.username = "probe";
        AuthConfig auth;
        auth.username = "probe";
        auth.password_file = password_file_.string();
        std::string problem;
        auto source = CredentialSource::load(auth, problem);
        EXPECT_TRUE(source) << problem;
        settings.login = std::make_shared<const CredentialSource>(std::move(*source));
        settings.cleanup = CleanupMode::trash;
        settings.use_idle = use_idle;
        settings.token_secret = kSecret;
        settings.account = std::move(account);
        settings.label = "probe@exchange";
        auto made = std::make_shared<MailboxTracker>(io_.get_executor(), std::move(settings),
                                                     events_, std::make_shared<AwaitedTokens>());
        made->start();
        return made;
    }

    static std::shared_ptr<ImapAccount> account(std::size_t max_sessions = 8) {
        return std::make_shared<ImapAccount>("probe@exchange", max_sessions);
    }

    // Runs the loop until `done` holds (checked every 10 ms) or `limit` passes.
    void run_until(const std::function<bool()>& done, Clock::duration limit = 5s) {
        const auto deadline = Clock::now() + limit;
        while (!done() && Clock::now() < deadline) {
            if (io_.stopped()) io_.restart();  // out of work once a run is done
            io_.run_for(10ms);
        }
    }

    static constexpr const char* kSecret = "installation secret";
    FakeExchangeImap server_;
    asio::io_context io_;
    NoEvents events_;
    const test::TempDir dir_;
    const fs::path password_file_;
};

TEST_F(ExchangeTest, JunkIsFoundInJunkEmailAndRemovedWithoutMove) {
    const auto watcher = tracker(account());
    // Both folders watched, found by their names: Exchange flags none.
    run_until([&] { return sent(server_, "SELECT \"Junk Email\"") && sent(server_, " IDLE"); });
    ASSERT_TRUE(sent(server_, "SELECT \"INBOX\"") && sent(server_, "SELECT \"Junk Email\""));
    EXPECT_TRUE(sent(server_, "LIST \"\" \"*\""));
    EXPECT_FALSE(sent(server_, "SPECIAL-USE"));

    const std::string token = make_token(kSecret, std::chrono::system_clock::now() + 1h);
    watcher->expect(token, "exchange");
    server_.deliver("Junk Email", "From: probe@example.test\r\nX-Mailcanary-Token: " + token +
                                      "\r\nSubject: mailcanary probe\r\n");
    WaitResult result;
    bool waited = false;
    StopSignal stop;
    Transcript transcript;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            result = co_await watcher->wait(token, Clock::now() + 5s, stop, transcript);
            waited = true;
        },
        asio::detached);
    run_until([&] { return waited; });
    watcher->stop();
    io_.run_for(50ms);
    ASSERT_TRUE(waited);
    EXPECT_EQ(result.kind, WaitResult::Kind::arrived);
    EXPECT_EQ(result.arrival.folder, "Junk Email");
    EXPECT_TRUE(result.arrival.junk);
    EXPECT_TRUE(server_.messages_in("Junk Email").empty()) << "removed from the junk folder";
    EXPECT_EQ(server_.messages_in("Deleted Items").size(), 1u) << "a copy in the trash";
    EXPECT_TRUE(sent(server_, "UID COPY 1 \"Deleted Items\""));
    EXPECT_TRUE(sent(server_, "UID STORE 1 +FLAGS (\\Deleted)"));
    EXPECT_TRUE(sent(server_, "UID EXPUNGE 1"));
    EXPECT_FALSE(sent(server_, "MOVE")) << "not offered";
}

// The login is throttled with a hint of 1.5 s: runs hear `throttled` (they send nothing), and the
// next login waits the 1.5 s, not the tracker's 1 s reconnect nor the 30 s of a backoff without
// a hint; once it works, runs send again.
TEST_F(ExchangeTest, AThrottledLoginIsThrottledAndTheNextWaitsForTheHint) {
    server_.throttle_logins(1, 1500);
    const auto watcher = tracker(account());
    std::optional<imap::Failure> first;
    std::optional<imap::Failure> later = imap::Failure{FailureReason::protocol, "not asked"};
    bool asked = false;
    StopSignal stop;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            first = co_await watcher->login_failure(Clock::now() + 5s, stop);
            asked = true;
        },
        asio::detached);
    run_until([&] { return asked && server_.login_times().size() >= 2 && sent(server_, " IDLE"); });
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            later = co_await watcher->login_failure(Clock::now() + 5s, stop);
        },
        asio::detached);
    io_.run_for(50ms);
    watcher->stop();
    io_.run_for(50ms);
    ASSERT_TRUE(first);
    EXPECT_EQ(to_string(first->reason), "throttled") << first->detail;
    EXPECT_NE(first->detail.find("Request is throttled"), std::string::npos) << first->detail;
    const auto logins = server_.login_times();
    ASSERT_GE(logins.size(), 2u) << "then the junk folder's session logs in too";
    EXPECT_GE(logins[1] - logins[0], 1500ms);
    EXPECT_FALSE(later) << "the second login worked";
}

// While the account is throttled (here by another session to it), a message on its way no
// longer makes the tracker look every few dozen milliseconds: it polls at poll_interval (1 s).
TEST_F(ExchangeTest, PromptChecksPauseWhileTheAccountIsThrottled) {
    const auto shared = account();
    const auto watcher = tracker(shared, /*use_idle=*/false);
    run_until([&] { return count_sent(server_, " NOOP") >= 1; });
    watcher->expect(make_token(kSecret, std::chrono::system_clock::now() + 1h), "exchange");
    const auto before = count_sent(server_, " NOOP");
    io_.run_for(300ms);
    const auto prompt = count_sent(server_, " NOOP") - before;
    EXPECT_GE(prompt, 4u) << "prompt checks every 25 ms or so";

    shared->session_failed({FailureReason::throttled, "SELECT: BAD Request is throttled.", 10s});
    io_.run_for(50ms);  // the prompt pause in progress ends
    const auto throttled_from = count_sent(server_, " NOOP");
    io_.run_for(600ms);
    EXPECT_LE(count_sent(server_, " NOOP") - throttled_from, 1u) << "back to poll_interval";
    watcher->stop();
    io_.run_for(50ms);
}

// An account of one session: the junk folder's watcher waits for it; the server never sees two.
TEST_F(ExchangeTest, AnAccountsSessionsStayWithinTheBound) {
    const auto watcher = tracker(account(1));
    run_until([&] { return sent(server_, " IDLE"); });
    io_.run_for(300ms);
    EXPECT_EQ(server_.peak_sessions(), 1);
    EXPECT_FALSE(sent(server_, "SELECT \"Junk Email\"")) << "no session left for it";
    watcher->stop();
    io_.run_for(50ms);
}

// The imap probe's runs: a throttled login is `throttled`, and while the backoff lasts the next
// run does not connect at all; another account on the same server is not held back, and
// Exchange's "NO LOGIN failed." stays a refused login.
TEST_F(ExchangeTest, TheImapProbeClassifiesTheSameWay) {
    server_.throttle_logins(1, 60'000);
    const auto imap_target = [&](const std::string& name, const std::string& user) {
        return "[[targets]]\nname = \"" + name +
               "\"\nhost = \"127.0.0.1\"\nprobes = [\"imap\"]\n[targets.imap]\nport = " +
               std::to_string(server_.port()) +
               "\ntls = \"none\"\nallow_plaintext_auth = true\nusername = \"" + user +
               "\"\npassword_file = \"" + password_file_.string() + "\"\n";
    };
    const std::string config_text =
        imap_target("exchange", "probe") + imap_target("stranger", "stranger");
    const ConfigResult loaded = load_config_string(config_text, "exchange.toml");
    ASSERT_TRUE(loaded.errors.empty()) << loaded.errors.front().to_string();
    std::vector<ConfigError> errors;
    auto compiled = compile_targets(*loaded.config, errors, SecretPolicy::load_if_present);
    ASSERT_TRUE(errors.empty()) << errors.front().to_string();
    prometheus::Registry registry;
    ProbeResources resources(io_.get_executor(), registry, {});
    const auto attached = attach_resources(std::move(compiled), resources);
    const ProbeKind* imap = find_probe("imap");
    ASSERT_NE(imap, nullptr);
    const auto run_once = [&](Transcript& transcript, std::size_t target = 0) {
        RunMetrics metrics;
        StopSignal stop;
        const std::function<void()> no_cap;
        Outcome outcome;
        bool done = false;
        asio::co_spawn(
            io_,
            [&]() -> asio::awaitable<void> {
                outcome = co_await imap->run(ProbeRun{*attached.at(target), Clock::now() + 5s,
                                                      metrics, transcript, stop, no_cap});
                done = true;
            },
            asio::detached);
        run_until([&] { return done; });
        return outcome;
    };
    Transcript first_transcript;
    const Outcome first = run_once(first_transcript);
    ASSERT_TRUE(first.failure) << first_transcript.to_text();
    EXPECT_EQ(to_string(*first.failure), "throttled") << first.detail;
    Transcript second_transcript;
    const Outcome second = run_once(second_transcript);
    ASSERT_TRUE(second.failure);
    EXPECT_EQ(to_string(*second.failure), "throttled") << second.detail;
    EXPECT_NE(second_transcript.to_text().find("not connected"), std::string::npos)
        << second_transcript.to_text();
    EXPECT_EQ(server_.login_times().size(), 1u) << "the second run did not connect";
    Transcript stranger_transcript;
    const Outcome stranger = run_once(stranger_transcript, 1);
    ASSERT_TRUE(stranger.failure);
    EXPECT_EQ(to_string(*stranger.failure), "auth_rejected") << stranger.detail;
    EXPECT_EQ(server_.login_times().size(), 2u);
    resources.stop();
}

}  // namespace
}  // namespace mailcanary
