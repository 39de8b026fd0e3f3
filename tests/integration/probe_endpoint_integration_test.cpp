// GET /probe against the real stack: blackbox_exporter's series and mailcanary's phases and
// reason for one run of a module, the deadline from Prometheus's scrape timeout, the transcript
// with &debug=true, and the refusals (a host not allowed, an unknown module, a run too soon).

#include <sys/socket.h>

#include <stdexcept>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

// A socket that listens and never accepts: the kernel completes the handshake, no greeting ever
// comes.
class SilentListener {
  public:
    SilentListener() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || listen(fd_, 8) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
            throw std::runtime_error("no loopback listener");
        }
        port_ = ntohs(address.sin_port);
    }
    ~SilentListener() { close(fd_); }
    std::string port() const { return std::to_string(port_); }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

class ProbeEndpointIntegration : public AgentIntegration {
  protected:
    // A target on the stack (so that its host is allowed by default) and the modules.
    std::string config(const std::string& endpoint_table = "") const {
        const std::string tls = "[modules.tls_options]\nca_file = \"" + ca() +
                                "\"\nserver_name = \"" + env_.at("MAILSTACK_TLS_SERVER_NAME") +
                                "\"\n";
        return header() + endpoint_table + target("mx", port("MAILSTACK_SMTP_PORT"), "none") +
               "[[modules]]\nname = \"smtp_starttls\"\ntimeout = \"10s\"\n" + tls +
               "[[modules]]\nname = \"submission_auth\"\nprobes = [\"connect\", \"auth\"]\n" +
               "timeout = \"5s\"\n" + tls + "[modules.auth]\nusername = \"" +
               env_.at("MAILSTACK_USER") + "\"\npassword_file = \"" +
               env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n";
    }
    static std::string probe_path(const std::string& module, const std::string& target,
                                  const std::string& more = "") {
        return "/probe?module=" + module + "&target=" + target + more;
    }
    std::string at(const char* port_key) const { return host() + ":" + port(port_key); }
};

TEST_F(ProbeEndpointIntegration, ASuccessfulRunAnswersAsBlackboxDoes) {
    AgentProcess agent(dir_, config());
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto reply =
        http("GET", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_PORT"))));
    ASSERT_EQ(reply.status, 200) << reply.body << agent.log();
    EXPECT_EQ(reply.content_type, "text/plain; version=0.0.4; charset=utf-8");
    const std::string& text = reply.body;
    EXPECT_EQ(value_of(text, "probe_success"), 1) << text;
    EXPECT_GT(value_of(text, "probe_duration_seconds"), 0);
    EXPECT_LT(value_of(text, "probe_duration_seconds"), 5);
    EXPECT_EQ(value_of(text, "probe_ip_protocol"), 4);
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_GT(value_of(text, "probe_ssl_earliest_cert_expiry"), now);
    EXPECT_TRUE(value_of(text, R"(probe_tls_version_info{version="TLS 1.3"})") == 1 ||
                value_of(text, R"(probe_tls_version_info{version="TLS 1.2"})") == 1)
        << text;
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_run_success{probe="connect"})"), 1);
    const auto phase_seconds = [&](const std::string& phase) {
        return value_of(text, R"(mailcanary_probe_run_phase_duration_seconds{phase=")" + phase +
                                  R"(",probe="connect"})");
    };
    for (const char* phase : {"connect", "ehlo", "tls_handshake"}) {
        EXPECT_GT(phase_seconds(phase), 0) << phase << "\n" << text;
    }
    // The server speaks first: its banner may be there already (0 s) when the agent turns to it.
    EXPECT_GE(phase_seconds("banner"), 0) << text;
    EXPECT_EQ(text.find("mailcanary_probe_run_failure_info"), std::string::npos);
    // The run leaves no series of its own in /metrics: a scheduled target is not a /probe.
    EXPECT_EQ(agent.metrics().find("smtp_starttls"), std::string::npos);
}

TEST_F(ProbeEndpointIntegration, AFailedRunSaysWhyAndAModuleRunsItsProbesInOrder) {
    AgentProcess agent(dir_, config());
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto expired =
        http("GET", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_EXPIRED_PORT"))));
    ASSERT_EQ(expired.status, 200) << expired.body;
    EXPECT_EQ(value_of(expired.body, "probe_success"), 0) << expired.body;
    EXPECT_EQ(
        value_of(expired.body,
                 R"(mailcanary_probe_run_failure_info{probe="connect",reason="tls_cert_expired"})"),
        1)
        << expired.body;
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_LT(value_of(expired.body, "probe_ssl_earliest_cert_expiry"), now)
        << "the expired certificate's date, though verification failed";

    const auto auth =
        http("GET", agent.url(probe_path("submission_auth", at("MAILSTACK_SUBMISSION_PORT"))));
    ASSERT_EQ(auth.status, 200) << auth.body;
    EXPECT_EQ(value_of(auth.body, "probe_success"), 1) << auth.body;
    EXPECT_EQ(value_of(auth.body, R"(mailcanary_probe_run_success{probe="connect"})"), 1);
    EXPECT_EQ(value_of(auth.body, R"(mailcanary_probe_run_success{probe="auth"})"), 1);
    EXPECT_GT(value_of(auth.body,
                       R"(mailcanary_probe_run_phase_duration_seconds{phase="auth",probe="auth"})"),
              0)
        << auth.body;
}

TEST_F(ProbeEndpointIntegration, TheScrapeTimeoutBoundsTheRun) {
    SilentListener silent;
    AgentProcess agent(dir_, config("[probe_endpoint]\nallow = [\"127.0.0.0/8\"]\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto started = Clock::now();
    const auto reply =
        http("GET", agent.url(probe_path("smtp_starttls", "127.0.0.1:" + silent.port())),
             {"X-Prometheus-Scrape-Timeout-Seconds: 1.5"});
    const auto took = Clock::now() - started;
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(value_of(reply.body, "probe_success"), 0);
    EXPECT_EQ(
        value_of(reply.body,
                 R"(mailcanary_probe_run_failure_info{probe="connect",reason="banner_timeout"})"),
        1)
        << reply.body;
    EXPECT_GE(took, 900ms) << "1.5 s less the offset";
    EXPECT_LT(took, 1400ms) << "not the module's 10 s, and within the scrape's 1.5 s";
}

TEST_F(ProbeEndpointIntegration, DebugShowsTheTranscriptAndTheMetrics) {
    AgentProcess agent(dir_, config());
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto reply = http(
        "GET", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_PORT"), "&debug=true")));
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.content_type, "text/plain; charset=utf-8");
    EXPECT_NE(reply.body.find("--- connect: success"), std::string::npos) << reply.body;
    EXPECT_NE(reply.body.find("220 "), std::string::npos) << "the server's banner";
    EXPECT_NE(reply.body.find("STARTTLS"), std::string::npos);
    EXPECT_NE(reply.body.find("Metrics that would have been returned:\n"), std::string::npos);
    EXPECT_NE(reply.body.find("\nprobe_success 1\n"), std::string::npos) << reply.body;
}

TEST_F(ProbeEndpointIntegration, RefusesHostsNotAllowedUnknownModulesAndRunsTooSoon) {
    SilentListener elsewhere;  // would take the connection, were it made
    AgentProcess agent(dir_, config("[probe_endpoint]\nmin_interval_per_host = \"1h\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    // By default only the configured targets' host: 127.0.0.1, not another loopback address.
    auto reply =
        http("GET", agent.url(probe_path("smtp_starttls", "127.0.0.2:" + elsewhere.port())));
    EXPECT_EQ(reply.status, 400);
    EXPECT_NE(reply.body.find("target \"127.0.0.2\" is not allowed"), std::string::npos)
        << reply.body;
    reply = http("GET", agent.url(probe_path("localhost", "localhost")));
    EXPECT_EQ(reply.status, 400);
    EXPECT_NE(reply.body.find("unknown module \"localhost\""), std::string::npos) << reply.body;
    reply = http("GET", agent.url("/probe?target=" + at("MAILSTACK_SMTP_PORT")));
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(reply.body, "module parameter is missing\n");

    reply = http("GET", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_PORT"))));
    EXPECT_EQ(reply.status, 200) << reply.body;
    reply = http("GET", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_PORT"))));
    EXPECT_EQ(reply.status, 429) << reply.body;
    EXPECT_NE(reply.body.find("less than min_interval_per_host ago"), std::string::npos);
    reply = http("POST", agent.url(probe_path("smtp_starttls", at("MAILSTACK_SMTP_PORT"))));
    EXPECT_EQ(reply.status, 405);
}

}  // namespace
}  // namespace mailcanary::test
