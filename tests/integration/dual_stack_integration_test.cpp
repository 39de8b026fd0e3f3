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

// Before name resolution by the test DNS server: address literals, one per family, reach the
// same Postfix over IPv4 and IPv6; a pinned family is labelled, an address where nothing
// listens fails on its family alone, and `both` on a literal has no address of the other family.
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

}  // namespace
}  // namespace mailcanary::test
