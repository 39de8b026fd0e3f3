// The agent binary, run as a user runs it, against the real Postfix of tests/stack: its metrics
// are read over HTTP. The ctest fixture starts the stack; MAILCANARY_STACK_DIR says where.
#include <cstdio>
#include <sstream>

#include "integration/harness.hpp"
#include "protocols/credentials.hpp"
#include "protocols/token.hpp"

namespace mailcanary::test {
namespace {

TEST_F(AgentIntegration, HealthyStartTlsTargetSucceedsWithEveryPhaseTimed) {
    AgentProcess agent(
        dir_, header() + target("postfix", port("MAILSTACK_SMTP_PORT"), "starttls", tls_options()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"postfix"}));
    ASSERT_EQ(value_of(text, success_series("postfix")), 1) << text << agent.log();
    for (const char* phase :
         {"resolve", "connect", "banner", "ehlo", "starttls", "tls_handshake", "quit"}) {
        const std::string count =
            std::string(R"(mailcanary_probe_phase_duration_seconds_count{phase=")") + phase +
            R"(",probe="connect",target="postfix"})";
        EXPECT_GE(value_of(text, count), 1) << phase;
    }
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="220",command="banner",probe="connect",target="postfix"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="220",command="starttls",probe="connect",target="postfix"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="221",command="quit",probe="connect",target="postfix"})"),
        1);
    EXPECT_NE(text.find(R"(mailcanary_tls_info{cipher=")"), std::string::npos);
    EXPECT_NE(text.find(R"(version="TLSv1.3")"), std::string::npos);
    // The certificate made by the stack is valid for weeks at least.
    const double expiry = value_of(
        text, R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="connect",target="postfix"})");
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_GT(expiry, now + 7 * 86400);
    EXPECT_GT(
        value_of(
            text,
            R"(mailcanary_probe_last_success_timestamp_seconds{probe="connect",target="postfix"})"),
        now - 60);
    EXPECT_EQ(value_of(text, "mailcanary_config_last_reload_successful"), 1);
    EXPECT_GT(value_of(text, "process_resident_memory_bytes"), 0);

    // The status page and the transcript of the last run.
    const auto page = http("GET", agent.url("/"));
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
    const auto status = http("GET", agent.url("/api/v1/status")).body;
    EXPECT_NE(status.find(R"("target":"postfix","probe":"connect")"), std::string::npos) << status;
    EXPECT_NE(status.find(R"("state":"ok")"), std::string::npos) << status;
    const auto transcript = http("GET", agent.url("/results?target=postfix&probe=connect"));
    EXPECT_EQ(transcript.status, 200);
    EXPECT_NE(transcript.body.find("C: STARTTLS"), std::string::npos) << transcript.body;
    EXPECT_NE(transcript.body.find("S: 220 "), std::string::npos) << transcript.body;
    EXPECT_NE(transcript.body.find("TLS established"), std::string::npos) << transcript.body;
}

TEST_F(AgentIntegration, MetricsEndpointIsValidExposition) {
    AgentProcess agent(
        dir_, header() + target("postfix", port("MAILSTACK_SMTP_PORT"), "starttls", tls_options()) +
                  target("closed", "1", "none"));
    ASSERT_TRUE(agent.started()) << agent.log();
    agent.wait_for(each_reported({"postfix", "closed"}));
    const auto reply = http("GET", agent.url("/metrics"));
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.content_type, "text/plain; version=0.0.4; charset=utf-8");
    const fs::path file = dir_ / "metrics.txt";
    std::ofstream(file) << reply.body;
    // promtool is installed by scripts/install-deps.sh; its absence is a failure, not a skip.
    const std::string command = "promtool check metrics < " + file.string() + " > " +
                                (dir_ / "promtool.out").string() + " 2>&1";
    const int status = std::system(command.c_str());
    EXPECT_EQ(status, 0) << read_file(dir_ / "promtool.out");
    EXPECT_EQ(read_file(dir_ / "promtool.out"), "") << "promtool reported problems";
    EXPECT_EQ(http("GET", agent.url("/-/healthy")).status, 200);
    EXPECT_EQ(http("GET", agent.url("/-/ready")).status, 200);
    EXPECT_EQ(http("GET", agent.url("/nope")).status, 404);
    EXPECT_EQ(http("GET", agent.url("/-/reload")).status, 405);
}

TEST_F(AgentIntegration, ClosedPortIsConnectRefused) {
    // Port 1 on loopback: nothing listens there.
    AgentProcess agent(dir_, header() + target("closed", "1", "none"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"closed"}));
    EXPECT_EQ(value_of(text, success_series("closed")), 0) << text;
    EXPECT_GE(value_of(text, failure_series("closed", "connect_refused")), 1) << text;
}

TEST_F(AgentIntegration, UntrustedCertificateStillExportsItsExpiry) {
    // No ca_file: the system trust store does not know the stack's private CA.
    AgentProcess agent(dir_,
                       header() + target("untrusted", port("MAILSTACK_SMTP_PORT"), "starttls"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"untrusted"}));
    EXPECT_EQ(value_of(text, success_series("untrusted")), 0) << text;
    EXPECT_GE(value_of(text, failure_series("untrusted", "tls_cert_untrusted")), 1) << text;
    EXPECT_GT(
        value_of(
            text,
            R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="connect",target="untrusted"})"),
        static_cast<double>(std::time(nullptr)));
    // What was negotiated and what the server presented are exported for it too.
    EXPECT_NE(text.find(R"(mailcanary_tls_info{cipher="TLS_)"), std::string::npos) << text;
    EXPECT_NE(text.find(R"(probe="connect",target="untrusted",version="TLSv1.3"} 1)"),
              std::string::npos)
        << text;
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_tls_cert_info{issuer="CN=mailcanary test CA",probe="connect",sans="mail.example.test,localhost,127.0.0.1,127.0.0.2,::1",subject="CN=mail.example.test",target="untrusted"})"),
        1)
        << text;
}

TEST_F(AgentIntegration, ExpiredAndWrongNameCertificatesAreClassified) {
    AgentProcess agent(dir_, header() +
                                 target("expired", port("MAILSTACK_SMTP_EXPIRED_PORT"), "starttls",
                                        tls_options()) +
                                 target("wrongname", port("MAILSTACK_SMTP_PORT"), "starttls",
                                        tls_options("server_name = \"other.example.test\"\n")));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"expired", "wrongname"}));
    EXPECT_GE(value_of(text, failure_series("expired", "tls_cert_expired")), 1) << text;
    EXPECT_LT(
        value_of(
            text,
            R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="connect",target="expired"})"),
        static_cast<double>(std::time(nullptr)));
    EXPECT_GE(value_of(text, failure_series("wrongname", "tls_cert_hostname")), 1) << text;
}

TEST_F(AgentIntegration, SubmissionAndImplicitTlsSucceed) {
    AgentProcess agent(
        dir_,
        header() +
            target("submission", port("MAILSTACK_SUBMISSION_PORT"), "starttls", tls_options()) +
            target("smtps", port("MAILSTACK_SMTPS_PORT"), "implicit", tls_options()) +
            target("plain", port("MAILSTACK_SMTP_PORT"), "none"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"submission", "smtps", "plain"}));
    EXPECT_EQ(value_of(text, success_series("submission")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, success_series("smtps")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, success_series("plain")), 1) << text << agent.log();
    // Implicit TLS has a handshake but no STARTTLS phase.
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="tls_handshake",probe="connect",target="smtps"})"),
        1);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="starttls",probe="connect",target="smtps"})"),
        -1);
}

TEST_F(AgentIntegration, ReloadRejectsABadConfigAndAppliesAGoodOne) {
    const std::string both = header() + target("a", port("MAILSTACK_SMTP_PORT"), "none") +
                             target("b", port("MAILSTACK_SMTP_PORT"), "none");
    AgentProcess agent(dir_, both);
    ASSERT_TRUE(agent.started()) << agent.log();
    agent.wait_for([](const std::string& t) { return value_of(t, success_series("b")) == 1; });

    agent.write_config(both + "bogus_key = 1\n");
    const auto rejected = http("POST", agent.url("/-/reload"));
    EXPECT_EQ(rejected.status, 500);
    EXPECT_NE(rejected.body.find("bogus_key"), std::string::npos) << rejected.body;
    auto text = agent.metrics();
    EXPECT_EQ(value_of(text, "mailcanary_config_last_reload_successful"), 0);
    EXPECT_EQ(value_of(text, success_series("b")), 1) << "the old configuration keeps running";

    // Target b is removed, by SIGHUP this time: its series disappear, a's counters go on.
    const double runs_a =
        value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="a"})");
    agent.write_config(header() + target("a", port("MAILSTACK_SMTP_PORT"), "none"));
    kill(agent.pid(), SIGHUP);
    text = agent.wait_for([](const std::string& t) {
        return value_of(t, "mailcanary_config_last_reload_successful") == 1;
    });
    EXPECT_EQ(value_of(text, "mailcanary_config_last_reload_successful"), 1);
    EXPECT_EQ(text.find("target=\"b\""), std::string::npos);
    EXPECT_GE(value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="a"})"), runs_a);
}

TEST_F(AgentIntegration, SigtermStopsWithinTwoSecondsEvenWithAHangingTarget) {
    // A listener that accepts and never says anything: the run is stuck waiting for the banner.
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    socklen_t length = sizeof address;
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
    const std::string silent_port = std::to_string(ntohs(address.sin_port));

    AgentProcess agent(dir_, "[defaults]\ninterval = \"4s\"\ntimeout = \"3500ms\"\n" +
                                 target("silent", silent_port, "none"));
    ASSERT_TRUE(agent.started()) << agent.log();
    // The run waits for a banner for 3.5 s of every 4 s: catch it in flight.
    const auto text = agent.wait_for(
        [](const std::string& t) { return value_of(t, "mailcanary_probes_in_flight") == 1; }, 10s);
    ASSERT_EQ(value_of(text, "mailcanary_probes_in_flight"), 1);
    const auto started = Clock::now();
    EXPECT_EQ(agent.stop(SIGTERM, 2s), 0) << agent.log();
    EXPECT_LT(Clock::now() - started, 2s);
    close(listener);
}

// --- The auth probe against Postfix's submission ports (SASL through Dovecot) ---------------

TEST_F(AgentIntegration, AuthSucceedsWithTheRightPasswordAndIsRejectedWithAWrongOne) {
    const std::string wrong_password = "Wr0ng-canary-XYZZY-7f3a";
    setenv("MAILCANARY_IT_WRONG_PASSWORD", wrong_password.c_str(), 1);
    const std::string user = env_.at("MAILSTACK_USER");
    const std::string right_file = env_.at("MAILSTACK_PASSWORD_FILE");
    const auto auth_table = [&](const std::string& credential) {
        return "[targets.auth]\nusername = \"" + user + "\"\n" + credential + "\n";
    };
    AgentProcess agent(
        dir_,
        header() +
            target("submission", port("MAILSTACK_SUBMISSION_PORT"), "starttls",
                   "probes = [\"auth\"]\n" + tls_options() +
                       auth_table("password_file = \"" + right_file + "\"")) +
            target(
                "smtps", port("MAILSTACK_SMTPS_PORT"), "implicit",
                "probes = [\"auth\"]\n" + tls_options() +
                    auth_table("mechanism = \"login\"\npassword_file = \"" + right_file + "\"")) +
            target("wrong", port("MAILSTACK_SUBMISSION_PORT"), "starttls",
                   "probes = [\"auth\"]\n" + tls_options() +
                       auth_table("password_env = \"MAILCANARY_IT_WRONG_PASSWORD\"")) +
            target("refused-as-expected", port("MAILSTACK_SUBMISSION_PORT"), "starttls",
                   "probes = [\"auth\"]\nexpect = \"reject\"\n" + tls_options() +
                       auth_table("password_env = \"MAILCANARY_IT_WRONG_PASSWORD\"")) +
            target("plaintext", port("MAILSTACK_SMTP_PORT"), "none",
                   "probes = [\"auth\"]\n" + auth_table("password_file = \"" + right_file + "\"")));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported(
        {"submission", "smtps", "wrong", "refused-as-expected", "plaintext"}, "auth"));
    EXPECT_EQ(value_of(text, success_series("submission", "auth")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, success_series("smtps", "auth")), 1) << text << agent.log();
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="235",command="auth",probe="auth",target="submission"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="auth",probe="auth",target="submission"})"),
        1);

    EXPECT_EQ(value_of(text, success_series("wrong", "auth")), 0);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="auth",reason="auth_rejected",target="wrong"})"),
        1)
        << text;
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="535",command="auth",probe="auth",target="wrong"})"),
        1);
    EXPECT_EQ(value_of(text, success_series("refused-as-expected", "auth")), 1) << text;
    // Nothing is sent over plaintext without allow_plaintext_auth.
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="auth",reason="auth_insecure",target="plaintext"})"),
        1)
        << text;

    const auto transcript = http("GET", agent.url("/results?target=wrong&probe=auth")).body;
    EXPECT_NE(transcript.find("C: AUTH PLAIN <redacted>"), std::string::npos) << transcript;
    EXPECT_NE(transcript.find("S: 535 5.7.8"), std::string::npos) << transcript;

    // Neither password appears anywhere: metrics, status page, transcripts, log, one-shot runs,
    // the process title.
    std::string error;
    const std::string right_password = read_secret_file(right_file, error).value_or("");
    ASSERT_GE(right_password.size(), 8u) << error;
    std::string everything = agent.metrics() + http("GET", agent.url("/api/v1/status")).body;
    for (const char* name : {"submission", "smtps", "wrong", "refused-as-expected", "plaintext"}) {
        everything +=
            http("GET", agent.url(std::string("/results?target=") + name + "&probe=auth")).body;
        everything += http("GET", agent.url(std::string("/api/v1/results?target=") + name)).body;
    }
    everything += run_binary({"--config.file=" + (dir_ / "agent.toml").string(), "--probe=wrong"},
                             dir_ / "wrong.txt")
                      .output;
    everything +=
        run_binary({"--config.file=" + (dir_ / "agent.toml").string(), "--probe=submission"},
                   dir_ / "ok.txt")
            .output;
    everything += agent.log();
    // What every user of the machine sees of the running agent (ps, top): its command line and
    // its threads' names. No flag takes a secret; this holds it to that.
    const fs::path proc = "/proc/" + std::to_string(agent.pid());
    std::string title = read_file(proc / "cmdline");
    for (const auto& thread : fs::directory_iterator(proc / "task")) {
        title += read_file(thread.path() / "comm");
    }
    EXPECT_NE(title.find("--config.file="), std::string::npos) << "the title was read";
    everything += title;
    EXPECT_EQ(everything.find(wrong_password), std::string::npos);
    EXPECT_EQ(everything.find(right_password), std::string::npos);
    EXPECT_NE(everything.find("submission/auth: success"), std::string::npos)
        << "the one-shot runs ran";
}

// --- The accept probe
// ------------------------------------------------------------------------------

TEST_F(AgentIntegration, AcceptSubmitsARealMessageAndReportsRefusals) {
    const std::string user = env_.at("MAILSTACK_USER");
    const std::string domain = env_.at("MAILSTACK_DOMAIN");
    const auto message_table = [&](const std::string& to, const std::string& extra = "") {
        return "[targets.message]\nfrom = \"canary@mailcanary.test\"\nto = [\"" + to + "\"]\n" +
               extra;
    };
    const std::string helo = "accept-" + std::to_string(getpid()) + ".mailcanary.test";
    AgentProcess agent(
        dir_, "[defaults]\ninterval = \"1s\"\ntimeout = \"800ms\"\nhelo = \"" + helo + "\"\n\n" +
                  target("mx", port("MAILSTACK_SMTP_PORT"), "starttls",
                         "probes = [\"accept\"]\n" + tls_options() + message_table(user)) +
                  target("submission", port("MAILSTACK_SUBMISSION_PORT"), "starttls",
                         "probes = [\"accept\"]\n" + tls_options() + message_table(user) +
                             "[targets.auth]\nusername = \"" + user + "\"\npassword_file = \"" +
                             env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n") +
                  target("refused", port("MAILSTACK_SMTP_PORT"), "starttls",
                         "probes = [\"accept\"]\n" + tls_options() +
                             message_table(env_.at("MAILSTACK_REFUSED_RCPT"))) +
                  target("tempfail", port("MAILSTACK_SMTP_PORT"), "starttls",
                         "probes = [\"accept\"]\n" + tls_options() +
                             message_table(env_.at("MAILSTACK_TEMPFAIL_RCPT"))) +
                  target("rcpt-only", port("MAILSTACK_SMTP_PORT"), "starttls",
                         "probes = [\"accept\"]\n" + tls_options() +
                             message_table("other@" + domain, "mode = \"rcpt\"\n")));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(
        each_reported({"mx", "submission", "refused", "tempfail", "rcpt-only"}, "accept"));
    EXPECT_EQ(value_of(text, success_series("mx", "accept")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, success_series("submission", "accept")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, success_series("rcpt-only", "accept")), 1) << text << agent.log();
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="accept",reason="rcpt_rejected",target="refused"})"),
        1)
        << text;
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="accept",reason="rcpt_tempfail",target="tempfail"})"),
        1)
        << text;
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="354",command="data",probe="accept",target="mx"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="250",command="data_end",probe="accept",target="mx"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="250",command="rset",probe="accept",target="rcpt-only"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="data_end",probe="accept",target="mx"})"),
        1);
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="auth",probe="accept",target="submission"})"),
        1);

    // The queue id is shown in the transcript and on the status page.
    const auto transcript = http("GET", agent.url("/results?target=mx&probe=accept")).body;
    EXPECT_NE(transcript.find("queued as "), std::string::npos) << transcript;
    const auto status = http("GET", agent.url("/api/v1/status")).body;
    EXPECT_TRUE(std::regex_search(status, std::regex(R"("queue_id":"[0-9A-Za-z]+")"))) << status;
    const auto refused = http("GET", agent.url("/results?target=refused&probe=accept")).body;
    EXPECT_NE(refused.find("554 5.7.1"), std::string::npos) << refused;

    // The message reached the mailbox, with this run's identity and a token that verifies with
    // the secret the agent made beside its configuration (readable by the agent only).
    const fs::path secret_file = dir_ / "mailcanary.secret";
    ASSERT_TRUE(fs::exists(secret_file));
    EXPECT_EQ(fs::status(secret_file).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    const fs::path maildir =
        fs::path(env_.at("MAILCANARY_STACK_DIR_PATH")) / "mail" / domain / "probe" / "Maildir";
    const auto deadline = Clock::now() + 5s;
    while (messages_containing(maildir, ".mailcanary@" + helo) == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_GE(messages_containing(maildir, ".mailcanary@" + helo), 1);
    std::string secret = read_file(secret_file);
    while (!secret.empty() && secret.back() == '\n') secret.pop_back();
    int verified = 0;
    for (const auto& entry : fs::directory_iterator(maildir / "new")) {
        const std::string message = read_file(entry.path());
        if (message.find(".mailcanary@" + helo) == std::string::npos) continue;
        const auto at = message.find("X-Mailcanary-Token: ");
        ASSERT_NE(at, std::string::npos) << message;
        const auto start = at + std::string("X-Mailcanary-Token: ").size();
        const std::string token = message.substr(start, message.find('\n', start) - start);
        if (verify_token(token, secret)) ++verified;
        EXPECT_FALSE(verify_token(token, secret + "x"));
    }
    EXPECT_GE(verified, 1);
    // mode = "rcpt" sends nothing: other@ got no message from this agent.
    EXPECT_EQ(messages_containing(fs::path(env_.at("MAILCANARY_STACK_DIR_PATH")) / "mail" / domain /
                                      "other" / "Maildir",
                                  ".mailcanary@" + helo),
              0);
}

// What a shell command printed on stdout.
std::string output_of(const std::string& command) {
    std::string output;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return output;
    char chunk[4096];
    for (std::size_t read = 0; (read = fread(chunk, 1, sizeof chunk, pipe)) > 0;) {
        output.append(chunk, read);
    }
    pclose(pipe);
    return output;
}

// The queue ids of the messages from `sender` in `mailstack.sh queue`'s listing (postqueue -j:
// one JSON object a line, "queue_id" before "sender").
std::vector<std::string> queued_from(const std::string& listing, const std::string& sender) {
    std::vector<std::string> ids;
    std::istringstream lines(listing);
    const std::string key = "\"queue_id\": \"";
    for (std::string line; std::getline(lines, line);) {
        const auto at = line.find(key);
        if (at == std::string::npos ||
            line.find("\"sender\": \"" + sender + "\"") == std::string::npos)
            continue;
        const auto start = at + key.size();
        ids.push_back(line.substr(start, line.find('"', start) - start));
    }
    return ids;
}

// One good and one refused recipient: the run fails with rcpt_rejected and the probe's message
// reaches nobody. Every message here carries the stack's hold header, so one that Postfix
// accepted stays in its hold queue, where `mailstack.sh queue` lists it: the control target's
// does, and the one with the refused recipient must not.
TEST_F(AgentIntegration, ARefusedRecipientLeavesNoMessageBehind) {
    const std::string tag = std::to_string(getpid());
    const std::string held_from = "held-" + tag + "@mailcanary.test";
    const std::string mixed_from = "mixed-" + tag + "@mailcanary.test";
    const auto held_message = [&](const std::string& from, const std::string& to) {
        return "probes = [\"accept\"]\n" + tls_options() + "[targets.message]\nfrom = \"" + from +
               "\"\nto = [" + to + "]\n[targets.message.headers]\n" +
               env_.at("MAILSTACK_HOLD_HEADER") + " = \"yes\"\n";
    };
    const std::string user = "\"" + env_.at("MAILSTACK_USER") + "\"";
    const fs::path config = dir_ / "refusal.toml";
    std::ofstream(config)
        << header()
        << target("control", port("MAILSTACK_SMTP_PORT"), "starttls", held_message(held_from, user))
        << target(
               "mixed", port("MAILSTACK_SMTP_PORT"), "starttls",
               held_message(mixed_from, user + ", \"" + env_.at("MAILSTACK_REFUSED_RCPT") + "\""));
    const auto mixed =
        run_binary({"--config.file=" + config.string(), "--probe=mixed"}, dir_ / "mixed.txt");
    EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
    EXPECT_NE(mixed.output.find("failed: rcpt_rejected: 554 5.7.1"), std::string::npos)
        << mixed.output;
    EXPECT_EQ(mixed.output.find("C: DATA"), std::string::npos) << mixed.output;
    const auto control =
        run_binary({"--config.file=" + config.string(), "--probe=control"}, dir_ / "control.txt");
    EXPECT_EQ(control.exit_code, 0) << control.output;

    const std::string listing =
        output_of("bash " MAILCANARY_SOURCE_DIR "/tests/stack/mailstack.sh queue " +
                  env_.at("MAILCANARY_STACK_DIR_PATH"));
    const auto left_behind = queued_from(listing, mixed_from);
    EXPECT_TRUE(left_behind.empty()) << listing;
    // The control shows that an accepted message would be listed.
    const auto controls = queued_from(listing, held_from);
    EXPECT_EQ(controls.size(), 1u) << listing;
    // Dropped, not delivered: nobody reads them.
    for (const auto& ids : {left_behind, controls}) {
        for (const std::string& id : ids) {
            const std::string drop = "postsuper -c " + env_.at("MAILSTACK_POSTFIX_CONFIG_DIR") +
                                     " -d " + id + " hold 2>/dev/null";
            EXPECT_EQ(std::system(drop.c_str()), 0) << drop;
        }
    }
}

TEST_F(AgentIntegration, ShippedExampleConfigsAreValidAndCheckingLeavesNoTrace) {
    // The examples name secret files beside them that a user creates: the copies get placeholders.
    setenv("RELAY_CANARY_PASSWORD", "not-a-real-password", 1);
    setenv("YAHOO_CANARY_PASSWORD", "not-a-real-password", 1);
    const fs::path source(MAILCANARY_SOURCE_DIR);
    const fs::path copy = dir_ / "examples";
    fs::copy(source / "config/examples", copy, fs::copy_options::recursive);
    fs::create_directories(copy / "secrets");
    for (const char* secret : {"gmail.refresh-token", "gmail.client-secret", "m365.refresh-token",
                               "m365.client-secret", "fastmail.app-password"}) {
        const fs::path file = copy / "secrets" / secret;
        std::ofstream(file) << "placeholder\n";
        fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    }
    std::vector<fs::path> configs{source / "config/mailcanary.toml"};
    for (const auto& entry : fs::directory_iterator(copy)) {
        if (entry.path().extension() == ".toml") configs.push_back(entry.path());
    }
    fs::permissions(copy / "wrong-password.txt", fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(configs.size(), 8u);
    for (const auto& config : configs) {
        const auto run =
            run_binary({"--config.file=" + config.string(), "--config.check"}, dir_ / "check.txt");
        EXPECT_EQ(run.exit_code, 0) << config << "\n" << run.output;
        EXPECT_NE(run.output.find(", 0 warnings)"), std::string::npos) << config << "\n"
                                                                       << run.output;
    }
    EXPECT_FALSE(fs::exists(copy / "mailcanary.secret"));
}

TEST_F(AgentIntegration, ConfigCheckReportsEveryMistakeWithItsPlace) {
    const fs::path config = dir_ / "bad.toml";
    std::ofstream(config) << R"([defaults]
interval = "5 seconds"

[[targets]]
name = "a"
host = ""
port = 70000
tls = "sometimes"
probes = ["connect", "teleport"]
timeot = "1s"

[[targets]]
name = "a"
host = "mx.example.test"
interval = "5s"
timeout = "10s"
[targets.tls_options]
min_version = "1.7"
ca_file = "/nonexistent/ca.pem"
)";
    const auto run =
        run_binary({"--config.file=" + config.string(), "--config.check"}, dir_ / "out.txt");
    EXPECT_EQ(run.exit_code, 1) << run.output;
    std::istringstream lines(run.output);
    int located = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with(config.string() + ":")) ++located;
    }
    EXPECT_EQ(located, 10) << run.output;
    EXPECT_NE(run.output.find("10 errors"), std::string::npos) << run.output;
}

// What a careful operator would trip over, as --config.check prints it (issue 14, item 6): a
// password file every user can read, and a negative test slowing the good logins of its server.
TEST_F(AgentIntegration, ConfigCheckWarnsWithThePlaceOfEachRisk) {
    const fs::path password = dir_ / "mx.pw";
    std::ofstream(password) << "S3cret\n";
    fs::permissions(password, fs::perms::owner_read | fs::perms::owner_write |
                                  fs::perms::group_read | fs::perms::others_read);
    const std::string auth =
        "[targets.auth]\nusername = \"u\"\npassword_file = \"" + password.string() + "\"\n";
    const fs::path config = dir_ / "risky.toml";
    std::ofstream(config) << "[[targets]]\nname = \"good\"\nhost = \"mx.example.test\"\n"
                             "probes = [\"auth\"]\n"
                          << auth
                          << "\n[[targets]]\nname = \"negative\"\nhost = \"mx.example.test\"\n"
                             "probes = [\"auth\"]\nexpect = \"reject\"\n"
                          << auth;
    const auto run =
        run_binary({"--config.file=" + config.string(), "--config.check"}, dir_ / "risky.txt");
    EXPECT_EQ(run.exit_code, 0) << run.output;  // warnings, not errors
    EXPECT_NE(
        run.output.find("warning: " + config.string() + ":7:17: targets[1].auth.password_file"),
        std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("can be read by every user (mode 0644)"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("warning: " + config.string() + ":13:10: targets[2].expect"),
              std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("auth penalty"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("(2 targets, 3 warnings)"), std::string::npos) << run.output;
}

TEST_F(AgentIntegration, OneShotProbePrintsTheTranscript) {
    const fs::path config = dir_ / "oneshot.toml";
    std::ofstream(config) << header()
                          << target("postfix", port("MAILSTACK_SMTP_PORT"), "starttls",
                                    tls_options())
                          << target("closed", "1", "none");
    auto run = run_binary({"--config.file=" + config.string(), "--probe=postfix"}, dir_ / "ok.txt");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("postfix/connect: success"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("C: EHLO probe.mailcanary.test"), std::string::npos) << run.output;
    run = run_binary({"--config.file=" + config.string(), "--probe=closed"}, dir_ / "closed.txt");
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("failed: connect_refused"), std::string::npos) << run.output;
    run = run_binary({"--config.file=" + config.string(), "--probe=nosuch"}, dir_ / "nosuch.txt");
    EXPECT_EQ(run.exit_code, 2) << run.output;
}

}  // namespace
}  // namespace mailcanary::test
