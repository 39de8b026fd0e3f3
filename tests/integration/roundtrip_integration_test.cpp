// The roundtrip probe against the real stack: Postfix delivers through LMTP to Dovecot
// (Maildir), and the agent reads the mailbox back over Dovecot's IMAP.
#include <regex>

#include "integration/harness.hpp"
#include "protocols/credentials.hpp"
#include "protocols/token.hpp"

namespace mailcanary::test {
namespace {

class RoundtripIntegration : public AgentIntegration {
  protected:
    fs::path maildir() const {
        return fs::path(env_.at("MAILSTACK_MAIL_DIR")) / env_.at("MAILSTACK_DOMAIN") / "probe" /
               "Maildir";
    }

    // A roundtrip target: SMTP with STARTTLS to Postfix, then the probe user's mailbox over
    // IMAP. `message_extra` goes into [targets.message], `roundtrip_extra` into
    // [targets.roundtrip].
    std::string roundtrip_target(const std::string& name, const std::string& imap_host,
                                 const std::string& imap_port, const std::string& imap_tls,
                                 const std::string& roundtrip_extra = "",
                                 const std::string& message_extra = "") const {
        return target(
            name, port("MAILSTACK_SMTP_PORT"), "starttls",
            "probes = [\"roundtrip\"]\n" + tls_options() +
                roundtrip_tables(imap_host, imap_port, imap_tls, roundtrip_extra, message_extra));
    }

    // Messages anywhere in the probe user's Maildir (inbox and folders) carrying a token that
    // this test's agent issued (its secret is beside its config).
    int own_messages() const {
        std::string problem;
        const auto secret = read_secret_file(dir_ / "mailcanary.secret", problem);
        if (!secret) return -1;
        const std::regex token_header(R"(X-Mailcanary-Token: (mc1\.[0-9a-f.]+))");
        int found = 0;
        for (const auto& entry : fs::recursive_directory_iterator(maildir())) {
            if (!entry.is_regular_file()) continue;
            const auto parent = entry.path().parent_path().filename();
            if (parent != "new" && parent != "cur") continue;
            const std::string text = read_file(entry.path());
            std::smatch match;
            if (std::regex_search(text, match, token_header) &&
                verify_token(match[1].str(), *secret)) {
                ++found;
            }
        }
        return found;
    }

    // This agent's messages in the mailbox, counted while none of its runs has a message in
    // flight (pending 0 before and after the count, no run ended meanwhile): what a run in
    // flight sent is not the agent's to have cleaned yet. -1 when no such moment came.
    int own_messages_between_runs(const AgentProcess& agent,
                                  const std::vector<std::string>& targets) const {
        const auto quiet = [&](const std::string& text) {
            return std::all_of(targets.begin(), targets.end(), [&](const std::string& target) {
                return value_of(text, "mailcanary_roundtrip_pending{target=\"" + target + "\"}") ==
                       0;
            });
        };
        const auto runs = [&](const std::string& text) {
            double total = 0;
            for (const auto& target : targets) {
                total +=
                    value_of(text, R"(mailcanary_probe_runs_total{probe="roundtrip",target=")" +
                                       target + "\"}");
            }
            return total;
        };
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            const std::string before = agent.metrics();
            if (quiet(before)) {
                const int found = own_messages();
                const std::string after = agent.metrics();
                if (quiet(after) && runs(after) == runs(before)) return found;
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

    // Stores a message straight into the mailbox (no Postfix, no Sieve).
    void save_message(const std::string& message) const {
        const fs::path file = dir_ / "saved.eml";
        std::ofstream(file) << message;
        const std::string command =
            "bash " MAILCANARY_SOURCE_DIR "/tests/stack/mailstack.sh save " +
            env_.at("MAILCANARY_STACK_DIR_PATH") + " probe < " + file.string();
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }
};

std::string series(const std::string& name, const std::string& target,
                   const std::string& extra_labels = "") {
    return name + "{" + extra_labels + "target=\"" + target + "\"}";
}

std::string probe_failures(const std::string& target, const std::string& reason) {
    return R"(mailcanary_probe_failures_total{probe="roundtrip",reason=")" + reason +
           R"(",target=")" + target + "\"}";
}

TEST_F(RoundtripIntegration, DeliversOverIdleMeasuresAndLeavesOnlyOthersMessages) {
    // Someone else's message that looks like ours: same subject, a token that is not signed
    // with this agent's secret. It must survive.
    const std::string marker = "foreign-" + std::to_string(getpid());
    save_message(
        "From: someone@example.test\r\nTo: probe@example.test\r\nSubject: mailcanary "
        "probe\r\nX-Mailcanary-Token: mc1.00000000000000000000000000000000."
        "00000000000000000000000000000000\r\nMessage-ID: <" +
        marker + "@example.test>\r\n\r\nnot yours\r\n");
    ASSERT_EQ(messages_containing(maildir(), marker), 1);

    AgentProcess agent(dir_,
                       "[defaults]\ninterval = \"1500ms\"\ntimeout = \"1s\"\nhelo = "
                       "\"roundtrip.mailcanary.test\"\n\n" +
                           roundtrip_target("rt", host(), port("MAILSTACK_IMAP_PORT"), "starttls",
                                            "timeout = \"10s\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto delivered =
        series("mailcanary_roundtrip_delivered_total", "rt", "folder=\"inbox\",");
    auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, delivered) >= 3; }, 20s);
    ASSERT_GE(value_of(text, delivered), 3) << text << agent.log();
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"rt"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);

    EXPECT_EQ(value_of(text, success_series("rt", "roundtrip")), 1) << text;
    EXPECT_GE(value_of(text, series("mailcanary_roundtrip_seconds_count", "rt")), 3) << text;
    const double average = value_of(text, series("mailcanary_roundtrip_seconds_sum", "rt")) /
                           value_of(text, series("mailcanary_roundtrip_seconds_count", "rt"));
    EXPECT_GT(average, 0) << text;
    EXPECT_LT(average, 5) << text;
    EXPECT_GE(value_of(text, series("mailcanary_roundtrip_submission_seconds_count", "rt")), 3);
    EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_lost_total", "rt")), 0) << text;
    EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_late_total", "rt")), 0) << text;
    EXPECT_EQ(
        value_of(text, series("mailcanary_roundtrip_delivered_total", "rt", "folder=\"junk\",")),
        0);
    EXPECT_NE(agent.log().find("mode=idle"), std::string::npos) << agent.log();

    // The foreign message is untouched.
    EXPECT_EQ(messages_containing(maildir(), marker), 1);
}

TEST_F(RoundtripIntegration, MessageFiledIntoJunkIsAJunkFailureWithItsTime) {
    AgentProcess agent(
        dir_, header() + roundtrip_target("junked", host(), port("MAILSTACK_IMAPS_PORT"),
                                          "implicit", "timeout = \"10s\"\n",
                                          "[targets.message.headers]\n" +
                                              env_.at("MAILSTACK_JUNK_HEADER") + " = \"yes\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto junk = series("mailcanary_roundtrip_delivered_total", "junked", "folder=\"junk\",");
    const auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, junk) >= 1; }, 15s);
    ASSERT_GE(value_of(text, junk), 1) << text << agent.log();
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"junked"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("junked", "roundtrip")), 0) << text;
    EXPECT_GE(value_of(text, probe_failures("junked", "junk")), 1) << text;
    EXPECT_GE(value_of(text, series("mailcanary_roundtrip_seconds_count", "junked")), 1) << text;
}

TEST_F(RoundtripIntegration, VerdictsComeFromTheTrustedAuthenticationResultsOnly) {
    // The stack adds no Authentication-Results itself, so the probe message brings its own: as
    // the topmost one it counts, unless authserv_id names another server.
    const std::string verdicts =
        "[targets.message.headers]\nAuthentication-Results = \"mx.example.test; spf=pass "
        "smtp.mailfrom=canary@mailcanary.test; dkim=fail header.d=mailcanary.test; "
        "dmarc=none\"\n";
    AgentProcess agent(
        dir_,
        header() +
            roundtrip_target("topmost", host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                             "timeout = \"10s\"\n", verdicts) +
            roundtrip_target("trusted", host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                             "timeout = \"10s\"\nauthserv_id = \"mx.other.test\"\n", verdicts));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"topmost", "trusted"}, "roundtrip"), 15s);
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"topmost", "trusted"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    ASSERT_EQ(value_of(text, success_series("topmost", "roundtrip")), 1) << text << agent.log();
    ASSERT_EQ(value_of(text, success_series("trusted", "roundtrip")), 1) << text << agent.log();
    const auto verdict = [&](const std::string& target, const std::string& method,
                             const std::string& result) {
        return value_of(text, "mailcanary_roundtrip_auth_result{method=\"" + method +
                                  "\",result=\"" + result + "\",target=\"" + target + "\"}");
    };
    EXPECT_EQ(verdict("topmost", "spf", "pass"), 1) << text;
    EXPECT_EQ(verdict("topmost", "spf", "fail"), 0) << text;
    EXPECT_EQ(verdict("topmost", "dkim", "fail"), 1) << text;
    EXPECT_EQ(verdict("topmost", "dkim", "pass"), 0) << text;
    EXPECT_EQ(verdict("topmost", "dmarc", "none"), 1) << text;
    // Not from the trusted server: no verdict at all.
    EXPECT_EQ(verdict("trusted", "spf", "pass"), -1) << text;
}

TEST_F(RoundtripIntegration, HeldMessageIsLostThenCountedLateAndCleanedUp) {
    AgentProcess agent(
        dir_,
        "[defaults]\ninterval = \"3s\"\ntimeout = \"1s\"\nhelo = "
        "\"held.mailcanary.test\"\n\n" +
            roundtrip_target(
                "held", host(), port("MAILSTACK_IMAPS_PORT"), "implicit", "timeout = \"2s\"\n",
                "[targets.message.headers]\n" + env_.at("MAILSTACK_HOLD_HEADER") + " = \"yes\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto lost = series("mailcanary_roundtrip_lost_total", "held");
    auto text = agent.wait_for([&](const std::string& t) { return value_of(t, lost) >= 1; }, 15s);
    ASSERT_GE(value_of(text, lost), 1) << text << agent.log();
    EXPECT_GE(value_of(text, probe_failures("held", "lost")), 1) << text;

    // Postfix delivers what it held: the message given up on arrives, late.
    const std::string release = "bash " MAILCANARY_SOURCE_DIR
                                "/tests/stack/mailstack.sh release-held " +
                                env_.at("MAILCANARY_STACK_DIR_PATH") + " >/dev/null";
    ASSERT_EQ(std::system(release.c_str()), 0);
    const auto late = series("mailcanary_roundtrip_late_total", "held");
    text = agent.wait_for([&](const std::string& t) { return value_of(t, late) >= 1; }, 10s);
    EXPECT_GE(value_of(text, late), 1) << text << agent.log();
    EXPECT_NE(agent.log().find("a message given up as lost arrived"), std::string::npos);
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"held"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    // Runs after the release sent more held messages: drop them, nobody will read them.
    const std::string drop =
        "postsuper -c " + env_.at("MAILSTACK_POSTFIX_CONFIG_DIR") + " -d ALL hold 2>/dev/null";
    EXPECT_EQ(std::system(drop.c_str()), 0);
}

TEST_F(RoundtripIntegration, DroppedSessionReconnectsWithoutFailingRuns) {
    AgentProcess agent(dir_,
                       "[defaults]\ninterval = \"1s\"\ntimeout = \"800ms\"\nhelo = "
                       "\"kicked.mailcanary.test\"\n\n" +
                           roundtrip_target("kicked", host(), port("MAILSTACK_IMAPS_PORT"),
                                            "implicit", "timeout = \"10s\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto delivered =
        series("mailcanary_roundtrip_delivered_total", "kicked", "folder=\"inbox\",");
    auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, delivered) >= 1; }, 10s);
    ASSERT_GE(value_of(text, delivered), 1) << text << agent.log();

    // The server drops every IMAP session of the user, as on a restart or a failover.
    const std::string kick = "doveadm -c " + env_.at("MAILSTACK_DOVECOT_CONFIG") + " kick " +
                             env_.at("MAILSTACK_USER") + " >/dev/null";
    ASSERT_EQ(std::system(kick.c_str()), 0);
    const double before = value_of(text, delivered);
    text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, delivered) >= before + 3; }, 15s);
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"kicked"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_GE(value_of(text, delivered), before + 3) << text << agent.log();
    EXPECT_NE(agent.log().find("mailbox session failed"), std::string::npos) << agent.log();
    for (const char* reason : {"imap_connect", "imap_protocol", "lost"}) {
        EXPECT_EQ(value_of(text, probe_failures("kicked", reason)), -1) << reason << text;
    }
}

// Dovecot tells IDLE clients of new mail 500 ms after it stored it (NOTIFY_DELAY_MSECS): IDLE
// alone counts that wait as delivery time; prompt checks (the default) look meanwhile.
TEST_F(RoundtripIntegration, PromptChecksDoNotWaitForDovecotsDelayedIdleNotice) {
    const auto mean_roundtrip = [&](const std::string& roundtrip_extra) {
        AgentProcess agent(
            dir_, header() + roundtrip_target("rt", host(), port("MAILSTACK_IMAP_PORT"), "starttls",
                                              roundtrip_extra));
        EXPECT_TRUE(agent.started()) << agent.log();
        const auto count = series("mailcanary_roundtrip_seconds_count", "rt");
        const auto text =
            agent.wait_for([&](const std::string& t) { return value_of(t, count) >= 3; }, 20s);
        EXPECT_GE(value_of(text, count), 3) << text << agent.log();
        EXPECT_NE(agent.log().find("mode=idle"), std::string::npos) << agent.log();
        EXPECT_EQ(agent.stop(SIGTERM, 3s), 0);
        return value_of(text, series("mailcanary_roundtrip_seconds_sum", "rt")) /
               value_of(text, count);
    };
    const double idle_alone = mean_roundtrip("timeout = \"10s\"\nprompt_checks = false\n");
    EXPECT_GE(idle_alone, 0.5);
    const double prompt = mean_roundtrip("timeout = \"10s\"\n");
    // Delivery through Postfix and LMTP takes some milliseconds; the checks come every 25 ms.
    EXPECT_LT(prompt, 0.3);
}

TEST_F(RoundtripIntegration, ServerWithoutIdleIsPolled) {
    AgentProcess agent(
        dir_, header() + roundtrip_target("polled", env_.at("MAILSTACK_IMAPS_NOIDLE_HOST"),
                                          port("MAILSTACK_IMAPS_NOIDLE_PORT"), "implicit",
                                          "timeout = \"10s\"\npoll_interval = \"100ms\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto delivered =
        series("mailcanary_roundtrip_delivered_total", "polled", "folder=\"inbox\",");
    const auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, delivered) >= 2; }, 15s);
    ASSERT_GE(value_of(text, delivered), 2) << text << agent.log();
    // Cleaned up: none of this agent's delivered messages is left.
    EXPECT_EQ(own_messages_between_runs(agent, {"polled"}), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("polled", "roundtrip")), 1) << text;
    EXPECT_NE(agent.log().find("mode=polling"), std::string::npos) << agent.log();
    EXPECT_EQ(agent.log().find("mode=idle"), std::string::npos) << agent.log();
}

TEST_F(RoundtripIntegration, WrongImapPasswordIsImapAuthWithoutWaitingForTheTimeout) {
    const fs::path wrong = dir_ / "wrong.password";
    std::ofstream(wrong) << "not-the-password\n";
    std::string config =
        header() + roundtrip_target("badlogin", host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                                    "timeout = \"1m\"\n");
    config = std::regex_replace(config, std::regex("password_file = \"[^\"]*\""),
                                "password_file = \"" + wrong.string() + "\"");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"badlogin"}, "roundtrip"), 15s);
    ASSERT_EQ(value_of(text, success_series("badlogin", "roundtrip")), 0) << text << agent.log();
    EXPECT_GE(value_of(text, probe_failures("badlogin", "imap_auth")), 1) << text;
    const auto transcript = http("GET", agent.url("/results?target=badlogin&probe=roundtrip")).body;
    EXPECT_NE(transcript.find("AUTHENTICATIONFAILED"), std::string::npos) << transcript;
}

}  // namespace
}  // namespace mailcanary::test
