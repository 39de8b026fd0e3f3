// Issue 15, dual-stack, against the real Postfix of the stack, which listens for plain SMTP on
// 127.0.0.1 and [::1] (tests/stack/mailstack.sh): each family of a target is its own series,
// labelled ip_family, so a family that is broken shows while the other works.
#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class DualStackIntegration : public AgentIntegration {
  protected:
    // A target of the stack's plain SMTP port on `host`, pinned by `ip`.
    std::string family_target(const std::string& name, const std::string& host,
                              const std::string& ip) const {
        return "[[targets]]\nname = \"" + name + "\"\nhost = \"" + host +
               "\"\nport = " + port("MAILSTACK_SMTP_PORT") + "\ntls = \"none\"\nip = \"" + ip +
               "\"\n\n";
    }
};

std::string family_series(const std::string& family, const std::string& name,
                          const std::string& target) {
    return name + R"({ip_family=")" + family + R"(",probe="connect",target=")" + target + "\"}";
}
std::string family_success(const std::string& family, const std::string& target) {
    return family_series(family, "mailcanary_probe_success", target);
}
std::string family_failures(const std::string& family, const std::string& target,
                            const std::string& reason) {
    return R"(mailcanary_probe_failures_total{ip_family=")" + family +
           R"(",probe="connect",reason=")" + reason + R"(",target=")" + target + "\"}";
}

// Address literals, one per family, reach the same Postfix over IPv4 and IPv6; a pinned family is
// labelled, an address where nothing listens fails on its family alone, and `both` on a literal has
// no address of the other family.
TEST_F(DualStackIntegration, EachFamilyReachesPostfixAndIsLabelled) {
    const std::string config = header() + family_target("four", host(), "v4") +
                               family_target("six", env_.at("MAILSTACK_HOST6"), "v6") +
                               family_target("nothing", "127.0.0.2", "v4") +
                               family_target("literal", env_.at("MAILSTACK_HOST6"), "both");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string text = agent.wait_for([](const std::string& metrics) {
        return value_of(metrics, family_success("v4", "four")) >= 0 &&
               value_of(metrics, family_success("v6", "six")) >= 0 &&
               value_of(metrics, family_success("v4", "nothing")) >= 0 &&
               value_of(metrics, family_success("v4", "literal")) >= 0 &&
               value_of(metrics, family_success("v6", "literal")) >= 0;
    });
    EXPECT_EQ(value_of(text, family_success("v4", "four")), 1) << text;
    EXPECT_EQ(value_of(text, family_success("v6", "six")), 1) << text;
    EXPECT_EQ(value_of(text, family_success("v4", "nothing")), 0) << text;
    EXPECT_GE(value_of(text, family_failures("v4", "nothing", "connect_refused")), 1) << text;
    // ::1 has no IPv4 address: the v4 instance fails at resolution, the v6 one succeeds.
    EXPECT_EQ(value_of(text, family_success("v6", "literal")), 1) << text;
    EXPECT_GE(value_of(text, family_failures("v4", "literal", "dns")), 1) << text;
    // A pinned family has only labelled series: none without ip_family.
    EXPECT_EQ(value_of(text, success_series("four")), -1) << text;
    // The status API names each instance by its labels.
    const auto status = http("GET", agent.url("/api/v1/results?target=literal&ip_family=v6"));
    EXPECT_EQ(status.status, 200) << status.body;
    EXPECT_NE(status.body.find(R"("labels":{"ip_family":"v6"},"state":"ok")"), std::string::npos)
        << status.body;
    EXPECT_NE(status.body.find("connected to [::1]:" + port("MAILSTACK_SMTP_PORT")),
              std::string::npos)
        << status.body;
}

// By name through the stack's DNS server (tests/stack/mailstack.sh, zone canary.test):
// mail.canary.test has A 127.0.0.1 and AAAA ::1, both served by Postfix; v4broken.canary.test
// has A 127.0.0.2, where nothing listens, and AAAA ::1. `both` probes each name on both
// families in the same round: two series each, and only the broken family fails.
TEST_F(DualStackIntegration, BothFamiliesByNameShowABrokenIpv4BesideAWorkingIpv6) {
    const std::string dns = "127.0.0.1:" + port("MAILSTACK_DNS_PORT");
    const std::string config = "[agent]\ndns_servers = [\"" + dns + "\"]\n\n" + header() +
                               family_target("mail", "mail.canary.test", "both") +
                               family_target("broken", "v4broken.canary.test", "both");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string text = agent.wait_for(
        [](const std::string& metrics) {
            for (const char* target : {"mail", "broken"}) {
                for (const char* family : {"v4", "v6"}) {
                    if (value_of(metrics, family_success(family, target)) < 0) return false;
                }
            }
            return true;
        },
        20s);
    EXPECT_EQ(value_of(text, family_success("v4", "mail")), 1) << text;
    EXPECT_EQ(value_of(text, family_success("v6", "mail")), 1) << text;
    EXPECT_EQ(value_of(text, family_success("v4", "broken")), 0) << text;
    EXPECT_GE(value_of(text, family_failures("v4", "broken", "connect_refused")), 1) << text;
    EXPECT_EQ(value_of(text, family_success("v6", "broken")), 1) << text;
    // Neither target has a series without the label.
    EXPECT_EQ(value_of(text, success_series("mail")), -1) << text;
    EXPECT_EQ(value_of(text, success_series("broken")), -1) << text;
    // Each family connected to its own address of the name.
    const std::string smtp_port = port("MAILSTACK_SMTP_PORT");
    const auto v4 = http("GET", agent.url("/results?target=mail&probe=connect&ip_family=v4")).body;
    EXPECT_NE(v4.find("connected to 127.0.0.1:" + smtp_port), std::string::npos) << v4;
    EXPECT_EQ(v4.find("[::1]"), std::string::npos) << v4;
    const auto v6 = http("GET", agent.url("/results?target=mail&probe=connect&ip_family=v6")).body;
    EXPECT_NE(v6.find("connected to [::1]:" + smtp_port), std::string::npos) << v6;
    const auto broken =
        http("GET", agent.url("/results?target=broken&probe=connect&ip_family=v4")).body;
    EXPECT_NE(broken.find("127.0.0.2"), std::string::npos) << broken;
}

// `ip` pins the SMTP host's family only: the IMAP server (Dovecot, on 127.0.0.1 alone) of a target
// pinned to IPv6 is still reached over IPv4, as docs/configuration.md says.
TEST_F(DualStackIntegration, TheImapServerOfAPinnedTargetIsReachedOnAnyFamily) {
    const std::string config = header() + family_target("six", env_.at("MAILSTACK_HOST6"), "v6") +
                               "probes = [\"connect\", \"imap\"]\n[targets.imap]\nhost = \"" +
                               host() + "\"\nport = " + port("MAILSTACK_IMAPS_PORT") +
                               "\ntls = \"implicit\"\nusername = \"" + env_.at("MAILSTACK_USER") +
                               "\"\npassword_file = \"" + env_.at("MAILSTACK_PASSWORD_FILE") +
                               "\"\n[targets.imap.tls_options]\nca_file = \"" + ca() + "\"\n";
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string imap_success =
        R"(mailcanary_probe_success{ip_family="v6",probe="imap",target="six"})";
    const std::string text = agent.wait_for([&](const std::string& metrics) {
        return value_of(metrics, family_success("v6", "six")) >= 0 &&
               value_of(metrics, imap_success) >= 0;
    });
    EXPECT_EQ(value_of(text, family_success("v6", "six")), 1) << text;
    EXPECT_EQ(value_of(text, imap_success), 1) << text;
}

// Changing `ip` on a reload: v4 to both keeps the v4 series counting and adds the v6 ones;
// both to auto removes the labelled series and starts the unlabelled one.
TEST_F(DualStackIntegration, ReloadChangesTheFamiliesOfATarget) {
    const std::string dns =
        "[agent]\ndns_servers = [\"127.0.0.1:" + port("MAILSTACK_DNS_PORT") + "\"]\n\n" + header();
    AgentProcess agent(dir_, dns + family_target("mail", "mail.canary.test", "v4"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string v4_runs = family_series("v4", "mailcanary_probe_runs_total", "mail");
    std::string text =
        agent.wait_for([&](const std::string& metrics) { return value_of(metrics, v4_runs) >= 2; });
    ASSERT_GE(value_of(text, v4_runs), 2) << text;
    EXPECT_EQ(value_of(text, family_success("v6", "mail")), -1) << text;

    agent.write_config(dns + family_target("mail", "mail.canary.test", "both"));
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200) << agent.log();
    text = agent.metrics();
    const double runs_at_reload = value_of(text, v4_runs);
    EXPECT_GE(runs_at_reload, 2) << "the v4 series go on: " << text;
    text = agent.wait_for([](const std::string& metrics) {
        return value_of(metrics, family_success("v6", "mail")) == 1;
    });
    EXPECT_EQ(value_of(text, family_success("v6", "mail")), 1) << text;
    EXPECT_GE(value_of(text, v4_runs), runs_at_reload) << text;

    agent.write_config(dns + "[[targets]]\nname = \"mail\"\nhost = \"mail.canary.test\"\nport = " +
                       port("MAILSTACK_SMTP_PORT") + "\ntls = \"none\"\n");
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200) << agent.log();
    text = agent.wait_for(
        [](const std::string& metrics) { return value_of(metrics, success_series("mail")) == 1; });
    EXPECT_EQ(value_of(text, success_series("mail")), 1) << text;
    EXPECT_EQ(value_of(text, v4_runs), -1) << text;
    EXPECT_EQ(value_of(text, family_success("v6", "mail")), -1) << text;
}

}  // namespace
}  // namespace mailcanary::test
