// Issue 15, polite throttling, against the real Postfix: its anvil answers "421 4.7.0 ... Error:
// too many connections from 127.0.0.1" past 2 connections in 10 s on the stack's throttled port
// (tests/stack/mailstack.sh). The agent must read that as throttling, not as an outage: back off
// (runs skipped as `backoff`, mailcanary_backoff_active 1), and recover by itself once Postfix
// lets it in again, with no failure but `throttled` on the way, so the outage alerts that leave
// out targets in backoff (config/rules, tested in tests/monitoring) never page.
#include <regex>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class ThrottleIntegration : public AgentIntegration {};

std::string backoff_series(const std::string& target) {
    return R"(mailcanary_backoff_active{target=")" + target + "\"}";
}

std::string skipped_series(const std::string& target, const std::string& reason) {
    return R"(mailcanary_probe_skipped_total{probe="connect",reason=")" + reason + R"(",target=")" +
           target + "\"}";
}

// The reasons the target's connect runs failed for, as /metrics lists them.
std::vector<std::string> failure_reasons(const std::string& exposition, const std::string& target) {
    const std::regex series(
        R"re(mailcanary_probe_failures_total\{probe="connect",reason="([a-z_]+)",target=")re" +
        target + "\"\\}");
    std::vector<std::string> reasons;
    for (std::sregex_iterator it(exposition.begin(), exposition.end(), series), end; it != end;
         ++it) {
        reasons.push_back((*it)[1]);
    }
    return reasons;
}

TEST_F(ThrottleIntegration, PostfixAnvil421BacksOffAndRecoversWithoutAnOutage) {
    const std::string config = header() + target("throttled", port("MAILSTACK_SMTP_THROTTLED_PORT"),
                                                 "none", "throttle_backoff = \"3s\"");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();

    // The third connection within 10 s meets anvil's 421.
    std::string text = agent.wait_for(
        [](const std::string& metrics) {
            return value_of(metrics, failure_series("throttled", "throttled")) >= 1 &&
                   value_of(metrics, backoff_series("throttled")) == 1;
        },
        20s);
    ASSERT_GE(value_of(text, failure_series("throttled", "throttled")), 1) << text;
    ASSERT_EQ(value_of(text, backoff_series("throttled")), 1) << text;

    // Meanwhile the runs due are skipped, not run against a server that asked for a pause.
    text = agent.wait_for(
        [](const std::string& metrics) {
            return value_of(metrics, skipped_series("throttled", "backoff")) >= 1;
        },
        20s);
    ASSERT_GE(value_of(text, skipped_series("throttled", "backoff")), 1) << text;

    // Anvil's window passes: a run gets through and the backoff ends by itself.
    text = agent.wait_for(
        [](const std::string& metrics) {
            return value_of(metrics, backoff_series("throttled")) == 0 &&
                   value_of(metrics, success_series("throttled")) == 1;
        },
        40s);
    EXPECT_EQ(value_of(text, backoff_series("throttled")), 0) << text;
    EXPECT_EQ(value_of(text, success_series("throttled")), 1) << text;
    // Throttled, never an outage's reason (banner_rejected, closed, ...).
    EXPECT_EQ(failure_reasons(text, "throttled"), std::vector<std::string>{"throttled"}) << text;
    const std::string log = agent.log();
    EXPECT_NE(log.find("the SMTP server throttles the agent"), std::string::npos) << log;
    EXPECT_NE(log.find("too many connections from"), std::string::npos) << log;
    EXPECT_NE(log.find("the SMTP server lets the agent in again"), std::string::npos) << log;
}

}  // namespace
}  // namespace mailcanary::test
