// The roundtrip probe against the real stack: Postfix delivers through LMTP to Dovecot
// (Maildir), and the agent reads the mailbox back over Dovecot's IMAP.
#include <openssl/hmac.h>

#include <cstdio>
#include <regex>
#include <set>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class RoundtripIntegration : public AgentIntegration {
  protected:
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
        const OwnTokens own(dir_);
        if (!own.known()) return -1;
        int found = 0;
        for (const auto& entry : fs::recursive_directory_iterator(probe_maildir())) {
            if (!entry.is_regular_file()) continue;
            const auto parent = entry.path().parent_path().filename();
            if (parent != "new" && parent != "cur") continue;
            if (own.in(read_file(entry.path()))) ++found;
        }
        return found;
    }

    // This agent's messages in the mailbox, counted between its runs (count_between_runs).
    int own_messages_between_runs(const AgentProcess& agent,
                                  const std::vector<std::string>& targets) const {
        return count_between_runs(agent, targets, [this] { return own_messages(); });
    }

    // Runs a shell command, returning what it printed.
    static std::string output_of(const std::string& command) {
        std::string out;
        FILE* pipe = popen(command.c_str(), "r");
        if (pipe == nullptr) return out;
        char buffer[4096];
        while (const std::size_t read = std::fread(buffer, 1, sizeof buffer, pipe)) {
            out.append(buffer, read);
        }
        pclose(pipe);
        return out;
    }

    // The stack's command line for `command` with `arguments` (after the stack's directory).
    std::string mailstack(const std::string& command, const std::string& arguments = "") const {
        return "bash " MAILCANARY_SOURCE_DIR "/tests/stack/mailstack.sh " + command + " " +
               env_.at("MAILCANARY_STACK_DIR_PATH") + arguments;
    }

    // Releases the messages held in Postfix's queue for `held` or longer; remembers them all in
    // `seen` (to drop what is left at the end).
    void release_held_for(std::chrono::seconds held, std::set<std::string>& seen) const {
        const std::string queue = output_of(mailstack("queue"));
        const std::regex entry(
            R"re("queue_name": "hold", "queue_id": "([0-9A-Za-z]+)", "arrival_time": ([0-9]+))re");
        std::string ready;
        for (std::sregex_iterator it(queue.begin(), queue.end(), entry), end; it != end; ++it) {
            seen.insert((*it)[1].str());
            if (std::time(nullptr) - std::stol((*it)[2].str()) >= held.count()) {
                ready += " " + (*it)[1].str();
            }
        }
        if (ready.empty()) return;
        const std::string release = mailstack("release-held", ready + " >/dev/null");
        EXPECT_EQ(std::system(release.c_str()), 0) << release;
    }

    void drop_held(const std::set<std::string>& ids) const {
        for (const auto& id : ids) {
            const std::string drop = "postsuper -c " + env_.at("MAILSTACK_POSTFIX_CONFIG_DIR") +
                                     " -d " + id + " hold 2>/dev/null";
            std::system(drop.c_str());
        }
    }

    // Removes the probe user's messages whose Message-ID contains `marker`.
    void expunge_marked(const std::string& marker) const {
        const std::string expunge = "doveadm -c " + env_.at("MAILSTACK_DOVECOT_CONFIG") +
                                    " expunge -u " + env_.at("MAILSTACK_USER") +
                                    " mailbox INBOX header Message-ID " + marker;
        EXPECT_EQ(std::system(expunge.c_str()), 0) << expunge;
    }

    // Stores a message straight into the mailbox (no Postfix, no Sieve).
    void save_message(const std::string& message) const {
        const fs::path file = dir_ / "saved.eml";
        std::ofstream(file) << message;
        const std::string command = mailstack("save", " probe < " + file.string());
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
    ASSERT_EQ(messages_containing(probe_maildir(), marker), 1);

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
    EXPECT_EQ(messages_containing(probe_maildir(), marker), 1);
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

TEST_F(RoundtripIntegration, WrongImapPasswordIsImapAuthAndSendsNothing) {
    const fs::path wrong = dir_ / "wrong.password";
    std::ofstream(wrong) << "not-the-password\n";
    std::string config =
        header() + roundtrip_target("badlogin", host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                                    "timeout = \"1m\"\n");
    config = std::regex_replace(config, std::regex("password_file = \"[^\"]*\""),
                                "password_file = \"" + wrong.string() + "\"");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto failures = probe_failures("badlogin", "imap_auth");
    const auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, failures) >= 3; }, 15s);
    ASSERT_EQ(value_of(text, success_series("badlogin", "roundtrip")), 0) << text << agent.log();
    EXPECT_GE(value_of(text, failures), 3) << text;
    const auto transcript = http("GET", agent.url("/results?target=badlogin&probe=roundtrip")).body;
    EXPECT_NE(transcript.find("AUTHENTICATIONFAILED"), std::string::npos) << transcript;
    EXPECT_NE(transcript.find("not sent: cannot log in to"), std::string::npos) << transcript;
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    // Nothing was submitted, so nothing waits in Postfix's queue or lies in the mailbox.
    EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_submission_seconds_count", "badlogin")),
              0)
        << text;
    EXPECT_EQ(transcript.find("MAIL FROM"), std::string::npos) << transcript;
    EXPECT_EQ(own_messages(), 0);
}

// Issue 20: two targets read one mailbox through two ports. The quick one (IDLE, a 2 s timeout)
// sweeps the mailbox every 2 s; the slow one looks only every 5 s, and Postfix holds its
// messages 3 s first: they lie in the mailbox older than the quick one's timeout while the slow
// one still waits for them. Its sweep used to take them, and the slow target paged "lost".
TEST_F(RoundtripIntegration, TwoTargetsReadingOneMailboxNeverTakeEachOthersMessages) {
    AgentProcess agent(
        dir_,
        "[defaults]\ninterval = \"2s\"\ntimeout = \"1s\"\nhelo = \"probe.mailcanary.test\"\n\n" +
            roundtrip_target(
                "slow", env_.at("MAILSTACK_IMAPS_NOIDLE_HOST"), port("MAILSTACK_IMAPS_NOIDLE_PORT"),
                "implicit",
                "timeout = \"12s\"\nidle = false\npoll_interval = \"5s\"\nprompt_checks = false\n",
                "[targets.message.headers]\n" + env_.at("MAILSTACK_HOLD_HEADER") + " = \"yes\"\n") +
            roundtrip_target("quick", host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                             "timeout = \"2s\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto delivered = [](const std::string& target) {
        return series("mailcanary_roundtrip_delivered_total", target, "folder=\"inbox\",");
    };
    const auto lost = [](const std::string& text) {
        return value_of(text, series("mailcanary_roundtrip_lost_total", "slow")) +
               value_of(text, series("mailcanary_roundtrip_lost_total", "quick"));
    };
    std::set<std::string> held;
    std::string text = agent.metrics();
    const auto deadline = Clock::now() + 40s;
    while (Clock::now() < deadline && value_of(text, delivered("slow")) < 3 && lost(text) == 0) {
        release_held_for(3s, held);
        std::this_thread::sleep_for(250ms);
        text = agent.metrics();
    }
    const auto slow_run = http("GET", agent.url("/results?target=slow&probe=roundtrip")).body;
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    drop_held(held);

    EXPECT_EQ(lost(text), 0) << text << agent.log();
    EXPECT_GE(value_of(text, delivered("slow")), 3) << text << agent.log();
    EXPECT_GE(value_of(text, delivered("quick")), 3) << text;
    for (const char* target : {"slow", "quick"}) {
        EXPECT_EQ(value_of(text, probe_failures(target, "lost")), -1) << target << text;
        EXPECT_EQ(value_of(text, success_series(target, "roundtrip")), 1) << target << text;
    }
    EXPECT_FALSE(held.empty()) << "the slow target's messages were to be held first";
    // Its last run's transcript shows the IMAP side: the fetches of new mail's token header
    // that looked for its message and the removal, with the server's replies; never the token.
    for (const char* expected :
         {":* (UID BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token Content-Type)])",
          "C: [INBOX] UID FETCH ", "C: [INBOX] UID STORE ", "C: [INBOX] UID EXPUNGE ",
          "S: OK Expunge completed"}) {
        EXPECT_NE(slow_run.find(expected), std::string::npos) << expected << "\n" << slow_run;
    }
    EXPECT_FALSE(std::regex_search(slow_run, std::regex(R"(mc2\.[0-9]+\.[0-9a-f]{32}\.)")))
        << slow_run;
}

// An mc1 token, as agents before the signed deadline made them.
std::string legacy_token(const std::string& secret, const std::string& run_id) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(run_id.data()), run_id.size(), digest, &length);
    std::string mac;
    char hex[3];
    for (unsigned int i = 0; i < 16; ++i) {
        std::snprintf(hex, sizeof hex, "%02x", digest[i]);
        mac += hex;
    }
    return "mc1." + run_id + "." + mac;
}

// Two agents with one secret (two vantage points writing to one mailbox). Each leaves the
// other's messages alone while their signed deadlines say they are awaited; leftovers of the
// secret that both see arrive at the same moment are removed, and counted by one of them.
TEST_F(RoundtripIntegration, TwoAgentsWithOneSecretShareAMailboxAndCountEachLeftoverOnce) {
    const fs::path secret_file = dir_ / "shared.secret";
    std::string problem;
    const auto secret = load_or_create_secret(secret_file.string(), problem);
    ASSERT_TRUE(secret) << problem;
    const auto config = [&](const std::string& name) {
        return "[agent]\nsecret_file = \"" + secret_file.string() + "\"\n" + header() +
               roundtrip_target(name, host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                                "timeout = \"5s\"\n");
    };
    AgentProcess first(dir_ / "first", config("first"));
    AgentProcess second(dir_ / "second", config("second"));
    ASSERT_TRUE(first.started() && second.started()) << first.log() << second.log();
    const auto delivered = [](const std::string& target) {
        return series("mailcanary_roundtrip_delivered_total", target, "folder=\"inbox\",");
    };
    ASSERT_GE(value_of(first.wait_for([&](const std::string& t) {
                  return value_of(t, delivered("first")) >= 1;
              }),
                       delivered("first")),
              1);
    ASSERT_GE(value_of(second.wait_for([&](const std::string& t) {
                  return value_of(t, delivered("second")) >= 1;
              }),
                       delivered("second")),
              1);

    // Both watch the mailbox now. Left behind by runs long over: four current tokens whose
    // deadline passed an hour ago, two old-format ones stored an hour ago. Still awaited by some
    // third agent for an hour: two more.
    const std::string marker = "shared-" + std::to_string(getpid()) + "-";
    const auto store = [&](const std::string& name, const std::string& token,
                           std::chrono::seconds age) {
        store_in_probe_inbox(name,
                             "From: canary@mailcanary.test\r\nSubject: mailcanary probe\r\n"
                             "Message-ID: <" +
                                 marker + name +
                                 "@mailcanary.test>\r\n"
                                 "X-Mailcanary-Token: " +
                                 token + "\r\n\r\nshared\r\n",
                             age);
    };
    const auto now = std::chrono::system_clock::now();
    for (int i = 0; i < 4; ++i)
        store("gone" + std::to_string(i), make_token(*secret, now - 1h), 0s);
    store("old0", legacy_token(*secret, "0123456789abcdef0123456789abcde0"), 1h);
    store("old1", legacy_token(*secret, "0123456789abcdef0123456789abcde1"), 1h);
    store("awaited0", make_token(*secret, now + 1h), 0s);
    store("awaited1", make_token(*secret, now + 1h), 0s);
    const int leftovers = 6;

    const std::string removed_series = "mailcanary_roundtrip_leftovers_removed_total{mailbox=\"" +
                                       env_.at("MAILSTACK_USER") + "@" + host() + ":" +
                                       port("MAILSTACK_IMAPS_PORT") + "/INBOX\"}";
    std::string first_text;
    std::string second_text;
    const auto counted = [&] {
        first_text = first.metrics();
        second_text = second.metrics();
        return std::max(0.0, value_of(first_text, removed_series)) +
               std::max(0.0, value_of(second_text, removed_series));
    };
    const auto deadline = Clock::now() + 15s;
    while (Clock::now() < deadline &&
           (counted() < leftovers || value_of(first_text, delivered("first")) < 3 ||
            value_of(second_text, delivered("second")) < 3)) {
        std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(1s);  // time for a second count, were there one
    const double removed = counted();
    const int gone_left = messages_containing(probe_maildir(), marker + "gone") +
                          messages_containing(probe_maildir(), marker + "old");
    const int awaited_left = messages_containing(probe_maildir(), marker + "awaited");
    ASSERT_EQ(first.stop(SIGTERM, 3s), 0);
    ASSERT_EQ(second.stop(SIGTERM, 3s), 0);
    expunge_marked(marker);

    EXPECT_EQ(removed, leftovers) << first_text << second_text << first.log() << second.log();
    EXPECT_EQ(gone_left, 0);
    EXPECT_EQ(awaited_left, 2) << "another agent's messages in flight are left alone";
    for (const auto& [target, text] : {std::pair{"first", first_text}, {"second", second_text}}) {
        EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_lost_total", target)), 0) << text;
        EXPECT_GE(value_of(text, delivered(target)), 3) << text;
    }
}

// IMAP APPEND of a message file with an INTERNALDATE a year past: python3's imaplib, over TLS.
constexpr const char* kAppendAYearAgo = R"py(
import imaplib, ssl, sys, time
host, port, user, password_file, ca, message_file = sys.argv[1:]
imap = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
imap.login(user, open(password_file).read().strip())
status, _ = imap.append("INBOX", None, imaplib.Time2Internaldate(time.time() - 365 * 86400),
                        open(message_file, "rb").read())
imap.logout()
sys.exit(0 if status == "OK" else 1)
)py";

// Bounces, as Postfix makes them: the stack accepts mail for bounce@, Dovecot's LMTP refuses it,
// and Postfix's bounce daemon returns a DSN to the envelope sender, a user whose mailbox the
// agent reads: probe@ (into INBOX) or other@ (whose Sieve script files reports into Bounces, the
// target's bounce_mailbox). Each run fails with bounced long before its 60 s timeout, with the
// DSN's status in its transcript; the DSN is removed, a foreign report beside it is not.
struct BounceCase {
    const char* user;            // the envelope sender and the IMAP login, @ the stack's domain
    const char* bounce_mailbox;  // empty: not set
    const char* folder;          // where the reports land, as the transcript names it
    const char* maildir_folder;  // the same in the user's Maildir
};

class RoundtripBounces : public RoundtripIntegration,
                         public testing::WithParamInterface<BounceCase> {};

TEST_P(RoundtripBounces, ABounceFailsTheRunAtOnceAndOnlyItsOwnReportIsRemoved) {
    const BounceCase& bounce = GetParam();
    const std::string user = std::string(bounce.user) + "@" + env_.at("MAILSTACK_DOMAIN");
    const fs::path maildir = fs::path(env_.at("MAILSTACK_MAIL_DIR")) / env_.at("MAILSTACK_DOMAIN") /
                             bounce.user / "Maildir" / bounce.maildir_folder;
    const std::string marker = "foreign-report-" + std::to_string(getpid());
    const std::string foreign_report =
        "From: MAILER-DAEMON@example.test\r\nTo: " + user +
        "\r\nSubject: Undelivered\r\nMessage-ID: <" + marker +
        "@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
        "report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "not yours\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
        "mx.example.test\r\n\r\nFinal-Recipient: rfc822; bounce@example.test\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: "
        "<someone-else@example.test>\r\nX-Mailcanary-Token: " +
        make_token("another installation", std::chrono::system_clock::now() - 1h) +
        "\r\n\r\n--B--\r\n";
    {
        // Sieve's fileinto :create makes the folder with the first bounce; the foreign one is
        // first.
        const std::string create = "doveadm -c " + env_.at("MAILSTACK_DOVECOT_CONFIG") +
                                   " mailbox create -u " + user + " " + bounce.folder +
                                   " 2>/dev/null";
        std::system(create.c_str());
        const fs::path file = dir_ / "foreign-report.eml";
        std::ofstream(file) << foreign_report;
        const std::string command = mailstack(
            "save", " " + std::string(bounce.user) + " " + bounce.folder + " < " + file.string());
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }
    ASSERT_EQ(messages_containing(maildir, marker), 1);

    const std::string bounce_mailbox =
        *bounce.bounce_mailbox ? "bounce_mailbox = \"" + std::string(bounce.bounce_mailbox) + "\"\n"
                               : "";
    AgentProcess agent(
        dir_,
        "[defaults]\ninterval = \"2s\"\ntimeout = \"1500ms\"\nhelo = "
        "\"bounce.mailcanary.test\"\n\n" +
            target("bounced", port("MAILSTACK_SMTP_PORT"), "starttls",
                   "probes = [\"roundtrip\"]\n" + tls_options() + "[targets.message]\nfrom = \"" +
                       user + "\"\nto = [\"" + env_.at("MAILSTACK_BOUNCE_RCPT") +
                       "\"]\n[targets.roundtrip]\nimap_host = \"" + host() + "\"\nimap_port = " +
                       port("MAILSTACK_IMAPS_PORT") + "\nimap_tls = \"implicit\"\nusername = \"" +
                       user + "\"\npassword_file = \"" + env_.at("MAILSTACK_PASSWORD_FILE") +
                       "\"\ntimeout = \"60s\"\n" + bounce_mailbox +
                       "[targets.roundtrip.tls_options]\nca_file = \"" + ca() + "\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto bounced = series("mailcanary_roundtrip_bounced_total", "bounced");
    const auto started = std::chrono::steady_clock::now();
    auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, bounced) >= 2; }, 30s);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_GE(value_of(text, bounced), 2) << text << agent.log();
    // Each report is removed before its run ends: none is left between runs.
    const OwnTokens own(dir_);
    const auto own_reports = [&] {
        int found = 0;
        for (const char* sub : {"new", "cur"}) {
            std::error_code ec;
            for (const auto& entry : fs::directory_iterator(maildir / sub, ec)) {
                if (own.in(read_file(entry.path()))) ++found;
            }
        }
        return own.known() ? found : -1;
    };
    EXPECT_EQ(count_between_runs(agent, {"bounced"}, own_reports), 0);
    const auto run = http("GET", agent.url("/results?target=bounced&probe=roundtrip")).body;
    text = agent.metrics();
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);

    EXPECT_LT(took, 30s) << "two bounced runs, each well before the 60 s timeout";
    EXPECT_GE(value_of(text, probe_failures("bounced", "bounced")), 2) << text;
    EXPECT_EQ(value_of(text, probe_failures("bounced", "lost")), -1) << "a bounce is not lost";
    EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_lost_total", "bounced")), 0) << text;
    EXPECT_EQ(value_of(text, success_series("bounced", "roundtrip")), 0) << text;
    for (const std::string& expected :
         {std::string("bounce from mail.example.test in ") + bounce.folder,
          std::string("Status 5.1.1"), std::string("User doesn't exist"),
          std::string("failed: bounced"), "C: [" + std::string(bounce.folder) + "] UID EXPUNGE "}) {
        EXPECT_NE(run.find(expected), std::string::npos) << expected << "\n" << run;
    }
    EXPECT_EQ(messages_containing(maildir, marker), 1) << "the foreign report stays";
    const std::string expunge = "doveadm -c " + env_.at("MAILSTACK_DOVECOT_CONFIG") +
                                " expunge -u " + user + " mailbox " + bounce.folder +
                                " header Message-ID " + marker;
    EXPECT_EQ(std::system(expunge.c_str()), 0) << expunge;
}

INSTANTIATE_TEST_SUITE_P(Folders, RoundtripBounces,
                         testing::Values(BounceCase{"probe", "", "INBOX", "."},
                                         BounceCase{"other", "Bounces", "Bounces", ".Bounces"}),
                         [](const testing::TestParamInfo<BounceCase>& param_info) {
                             return std::string(*param_info.param.bounce_mailbox
                                                    ? "BounceMailbox"
                                                    : "TheMailboxItself");
                         });

// The README's promise against the real Dovecot (issue 18): messages a year old, far past any
// sweep's age, whose token does not verify with the agent's secret stay in the mailbox: a forged
// token (a past deadline written over the signed one), tokens signed by another installation's
// secret (both versions), malformed ones (a valid token with a byte more, with a byte less). The
// agent's own leftover stored with them is removed: the sweep ran and judged them all.
TEST_F(RoundtripIntegration, TheSweepLeavesOldMessagesWhoseTokenDoesNotVerify) {
    const fs::path secret_file = dir_ / "own.secret";
    std::string problem;
    const auto secret = load_or_create_secret(secret_file.string(), problem);
    ASSERT_TRUE(secret) << problem;
    const auto now = std::chrono::system_clock::now();
    const std::string own = make_token(*secret, now - 1h);
    std::string forged = make_token(*secret, now + 1h);
    forged.replace(4, 10, "1700000000");
    const std::vector<std::pair<std::string, std::string>> not_ours{
        {"forged", forged},
        {"foreign", make_token("another installation", now - 1h)},
        {"foreign-mc1", legacy_token("another installation", "0123456789abcdef0123456789abcdef")},
        {"longer", own + "0"},
        {"shorter", own.substr(0, own.size() - 1)},
    };
    const std::string marker = "unverified-" + std::to_string(getpid()) + "-";
    const fs::path script = dir_ / "append.py";
    std::ofstream(script) << kAppendAYearAgo;
    const auto append = [&](const std::string& name, const std::string& token) {
        const fs::path message = dir_ / (name + ".eml");
        std::ofstream(message) << "From: canary@mailcanary.test\r\nSubject: mailcanary probe\r\n"
                                  "Message-ID: <"
                               << marker << name
                               << "@mailcanary.test>\r\nX-Mailcanary-Token: " << token
                               << "\r\n\r\nold\r\n";
        const std::string command = "python3 " + script.string() + " " + host() + " " +
                                    port("MAILSTACK_IMAPS_PORT") + " " + env_.at("MAILSTACK_USER") +
                                    " " + env_.at("MAILSTACK_PASSWORD_FILE") + " " + ca() + " " +
                                    message.string();
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
    };
    for (const auto& [name, token] : not_ours) append(name, token);
    append("own", own);
    // Dovecot's Maildir keeps the INTERNALDATE as the file's mtime: the APPEND's date took.
    for (const char* sub : {"new", "cur"}) {
        for (const auto& entry : fs::directory_iterator(probe_maildir() / sub)) {
            if (read_file(entry.path()).find(marker) == std::string::npos) continue;
            EXPECT_GT(fs::file_time_type::clock::now() - fs::last_write_time(entry.path()),
                      std::chrono::hours(24 * 300))
                << entry.path();
        }
    }

    AgentProcess agent(dir_, "[agent]\nsecret_file = \"" + secret_file.string() + "\"\n" +
                                 header() +
                                 roundtrip_target("swept", host(), port("MAILSTACK_IMAPS_PORT"),
                                                  "implicit", "timeout = \"5s\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string removed = "mailcanary_roundtrip_leftovers_removed_total{mailbox=\"" +
                                env_.at("MAILSTACK_USER") + "@" + host() + ":" +
                                port("MAILSTACK_IMAPS_PORT") + "/INBOX\"}";
    const auto delivered =
        series("mailcanary_roundtrip_delivered_total", "swept", "folder=\"inbox\",");
    const std::string text = agent.wait_for(
        [&](const std::string& t) {
            return value_of(t, removed) >= 1 && value_of(t, delivered) >= 2;
        },
        15s);
    const int own_left = messages_containing(probe_maildir(), marker + "own@");
    std::map<std::string, int> left;
    for (const auto& [name, token] : not_ours) {
        left[name] = messages_containing(probe_maildir(), marker + name + "@");
    }
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    expunge_marked(marker);

    EXPECT_GE(value_of(text, removed), 1) << text << agent.log();
    EXPECT_EQ(own_left, 0) << "the agent's own leftover is removed: the sweep ran";
    for (const auto& [name, token] : not_ours) {
        EXPECT_EQ(left[name], 1) << name << " (" << token << ") was removed";
    }
}
}  // namespace
}  // namespace mailcanary::test
