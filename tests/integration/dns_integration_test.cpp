// Issue 15, DNS as a phase, against the stack's unbound serving canary.test
// (tests/stack/mailstack.sh): the agent resolves through [agent] dns_servers, on its loop; a name
// that resolves is connected to with its resolve phase timed, and a DNS failure is the reason
// `dns` with what the server said, and which server, in the detail and the transcript.
#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class DnsIntegration : public AgentIntegration {
  protected:
    std::string dns_server() const { return "127.0.0.1:" + port("MAILSTACK_DNS_PORT"); }
    std::string agent_table() const {
        return "[agent]\ndns_servers = [\"" + dns_server() + "\"]\n\n";
    }
    // A connect target on the stack's plain SMTP port, by name.
    std::string named_target(const std::string& name, const std::string& host_name) const {
        return "[[targets]]\nname = \"" + name + "\"\nhost = \"" + host_name +
               "\"\nport = " + port("MAILSTACK_SMTP_PORT") + "\ntls = \"none\"\n\n";
    }
};

TEST_F(DnsIntegration, ResolvesThroughTheConfiguredServerAndTellsWhatFailed) {
    AgentProcess agent(dir_, agent_table() + header() + named_target("mail", "mail.canary.test") +
                                 named_target("nope", "nope.canary.test") +
                                 named_target("servfail", "servfail.canary.test"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string text = agent.wait_for(each_reported({"mail", "nope", "servfail"}), 20s);

    // The name of the stack resolves through the test server: connected, resolve phase timed.
    EXPECT_EQ(value_of(text, success_series("mail")), 1) << text;
    EXPECT_GE(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="resolve",probe="connect",target="mail"})"),
        1)
        << text;
    const auto mail = http("GET", agent.url("/results?target=mail&probe=connect")).body;
    EXPECT_NE(mail.find("mail.canary.test A 127.0.0.1 from " + dns_server()), std::string::npos)
        << mail;
    // IPv6 first (ip = "auto"), and Postfix listens on [::1] too since the dual-stack branch.
    EXPECT_NE(mail.find("connected to [::1]:" + port("MAILSTACK_SMTP_PORT")), std::string::npos)
        << mail;

    // No such name: `dns`, saying NXDOMAIN and the server that said it.
    EXPECT_EQ(value_of(text, success_series("nope")), 0) << text;
    EXPECT_GE(value_of(text, failure_series("nope", "dns")), 1) << text;
    const auto nope = http("GET", agent.url("/results?target=nope&probe=connect")).body;
    EXPECT_NE(nope.find("resolving nope.canary.test: NXDOMAIN from " + dns_server()),
              std::string::npos)
        << nope;

    // The server fails: `dns` too, saying SERVFAIL.
    EXPECT_GE(value_of(text, failure_series("servfail", "dns")), 1) << text;
    const auto servfail = http("GET", agent.url("/results?target=servfail&probe=connect")).body;
    EXPECT_NE(servfail.find("resolving servfail.canary.test: SERVFAIL from " + dns_server()),
              std::string::npos)
        << servfail;
}

// The servers are the configuration's: a reload with other ones is used by the next runs.
TEST_F(DnsIntegration, ReloadWithOtherServersTakesEffect) {
    // Nothing listens on port 1: every lookup fails, and says where it went.
    const std::string body = header() + named_target("mail", "mail.canary.test");
    AgentProcess agent(dir_, "[agent]\ndns_servers = [\"127.0.0.1:1\"]\n\n" + body);
    ASSERT_TRUE(agent.started()) << agent.log();
    std::string text = agent.wait_for(
        [](const std::string& t) { return value_of(t, failure_series("mail", "dns")) >= 1; }, 20s);
    ASSERT_GE(value_of(text, failure_series("mail", "dns")), 1) << text;
    const auto failed = http("GET", agent.url("/results?target=mail&probe=connect")).body;
    EXPECT_NE(failed.find("from 127.0.0.1:1"), std::string::npos) << failed;

    agent.write_config(agent_table() + body);
    const auto reloaded = http("POST", agent.url("/-/reload"));
    ASSERT_EQ(reloaded.status, 200) << reloaded.body;
    text = agent.wait_for(
        [](const std::string& t) { return value_of(t, success_series("mail")) == 1; }, 20s);
    EXPECT_EQ(value_of(text, success_series("mail")), 1) << text;
}

}  // namespace
}  // namespace mailcanary::test
