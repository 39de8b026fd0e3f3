// The SMTP servers' backoff and budgets, with made-up times: what a dense probe plan may send a
// server, and how long the agent stays away from one that throttles it.
#include "probes/smtp_host.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "common/window_budget.hpp"

namespace mailcanary {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::minutes;
using std::chrono::seconds;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1000);

TargetConfig target(std::string name, std::string host) {
    TargetConfig config;
    config.name = std::move(name);
    config.host = std::move(host);
    return config;
}

TargetConfig sender(std::string name, std::string from, std::size_t per_hour) {
    TargetConfig config = target(std::move(name), "mx.example.test");
    config.message.emplace();
    config.message->from = std::move(from);
    config.message->to = {"probe@example.test"};
    config.message->max_messages_per_hour = per_hour;
    return config;
}

Outcome throttled() {
    return Outcome::failed(FailureReason::throttled, "421 4.7.0 too many connections");
}

// mailcanary_backoff_active of target `name` (of its MX host `mx_host`, when given), or nothing
// when it has no series.
std::optional<double> backoff_active(prometheus::Registry& registry, const std::string& name,
                                     const std::string& mx_host = "") {
    prometheus::Labels wanted{{"target", name}};
    if (!mx_host.empty()) wanted.emplace("mx_host", mx_host);
    for (const auto& family : registry.Collect()) {
        if (family.name != "mailcanary_backoff_active") continue;
        for (const auto& metric : family.metric) {
            prometheus::Labels labels;
            for (const auto& label : metric.label) labels.emplace(label.name, label.value);
            if (labels == wanted) return metric.gauge.value;
        }
    }
    return std::nullopt;
}

TEST(WindowBudget, AllowsTheLimitInAnyWindow) {
    WindowBudget budget(minutes(1));
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(budget.allows(kStart + seconds(i), 3));
        budget.take(kStart + seconds(i));
    }
    EXPECT_FALSE(budget.allows(kStart + seconds(59), 3));
    // The first use leaves the window a minute after it: one more, not three.
    EXPECT_TRUE(budget.allows(kStart + seconds(60), 3));
    budget.take(kStart + seconds(60));
    EXPECT_FALSE(budget.allows(kStart + seconds(60), 3));
    // A raised limit (a reload) counts at once.
    EXPECT_TRUE(budget.allows(kStart + seconds(60), 4));
}

// A run's coroutine frame, holding its target and so its link, can be destroyed by its event
// loop after the agent's resources and registry are gone (under ASan this was a use after free).
TEST(SmtpHosts, ALinkMayOutliveTheHostsAndTheirRegistry) {
    std::shared_ptr<SmtpHostLink> link;
    {
        auto registry = std::make_unique<prometheus::Registry>();
        auto hosts = std::make_unique<SmtpHosts>(*registry);
        link = hosts->link(target("mx", "mx.example.test"));
        ASSERT_EQ(backoff_active(*registry, "mx"), 0);
        hosts.reset();
        EXPECT_EQ(backoff_active(*registry, "mx"), 0);  // the series stays while the agent does
    }
    link->show_backoff(true);
    link.reset();
}

class SmtpHostTest : public testing::Test {
  protected:
    prometheus::Registry registry_;
    SmtpHosts hosts_{registry_};
};

TEST_F(SmtpHostTest, ThrottledServerIsLeftAloneForTheBackoffThenTriedAgain) {
    TargetConfig config = target("mx", "mx.example.test");
    config.throttle_backoff = seconds(30);
    const auto link = hosts_.link(config);
    SmtpHost& host = link->host();
    ASSERT_EQ(host.admit(*link, false, kStart), std::nullopt);
    EXPECT_EQ(backoff_active(registry_, "mx"), 0);

    host.session_ended(25, throttled(), kStart);
    EXPECT_TRUE(host.backing_off(25));
    EXPECT_EQ(backoff_active(registry_, "mx"), 1);
    EXPECT_EQ(host.admit(*link, false, kStart + seconds(29)), HeldBack::backoff);
    ASSERT_EQ(host.admit(*link, false, kStart + seconds(30)), std::nullopt);

    // Throttled again in a row: twice as long; still shown as backing off in between.
    host.session_ended(25, throttled(), kStart + seconds(30));
    EXPECT_EQ(host.admit(*link, false, kStart + seconds(89)), HeldBack::backoff);
    EXPECT_EQ(backoff_active(registry_, "mx"), 1);
    ASSERT_EQ(host.admit(*link, false, kStart + seconds(90)), std::nullopt);

    // Let in: no backoff, and the next throttling starts over at the first step.
    host.session_ended(25, Outcome{}, kStart + seconds(90));
    EXPECT_FALSE(host.backing_off(25));
    EXPECT_EQ(backoff_active(registry_, "mx"), 0);
    host.session_ended(25, throttled(), kStart + seconds(100));
    EXPECT_EQ(host.admit(*link, false, kStart + seconds(129)), HeldBack::backoff);
    EXPECT_EQ(host.admit(*link, false, kStart + seconds(130)), std::nullopt);
}

TEST_F(SmtpHostTest, BackoffIsCappedAtAQuarterOfAnHour) {
    TargetConfig config = target("mx", "mx.example.test");
    config.throttle_backoff = minutes(10);
    const auto link = hosts_.link(config);
    SmtpHost& host = link->host();
    host.session_ended(25, throttled(), kStart);
    host.session_ended(25, throttled(), kStart + minutes(10));  // 20 minutes asked: 15
    EXPECT_EQ(host.admit(*link, false, kStart + minutes(24)), HeldBack::backoff);
    EXPECT_EQ(host.admit(*link, false, kStart + minutes(25)), std::nullopt);
}

TEST_F(SmtpHostTest, OtherFailuresAndStoppedRunsAreNoThrottling) {
    const auto link = hosts_.link(target("mx", "mx.example.test"));
    SmtpHost& host = link->host();
    host.session_ended(
        25, Outcome::failed(FailureReason::banner_rejected, "421 4.3.2 shutting down"), kStart);
    EXPECT_FALSE(host.backing_off(25));
    EXPECT_EQ(host.admit(*link, false, kStart), std::nullopt);
    host.session_ended(25, throttled(), kStart);
    host.session_ended(25, Outcome::stopped(), kStart + seconds(1));  // a reload: says nothing
    EXPECT_TRUE(host.backing_off(25));
}

TEST_F(SmtpHostTest, TargetsOnOneHostShareItsBackoffAndTheMostPatientSetsIt) {
    TargetConfig quick = target("quick", "MX.example.test");
    quick.throttle_backoff = seconds(5);
    TargetConfig patient = target("patient", "mx.example.test");
    patient.throttle_backoff = seconds(40);
    const auto first = hosts_.link(quick);
    const auto second = hosts_.link(patient);
    const auto elsewhere = hosts_.link(target("other", "mx2.example.test"));
    ASSERT_EQ(&first->host(), &second->host());

    first->host().session_ended(25, throttled(), kStart);
    EXPECT_EQ(second->host().admit(*second, false, kStart + seconds(39)), HeldBack::backoff);
    EXPECT_EQ(first->host().admit(*first, false, kStart + seconds(40)), std::nullopt);
    EXPECT_EQ(backoff_active(registry_, "patient"), 1);
    EXPECT_EQ(backoff_active(registry_, "other"), 0);
    EXPECT_EQ(elsewhere->host().admit(*elsewhere, false, kStart), std::nullopt);
}

// Each MX host of an `mx` target is a server of its own: one throttling the agent is shown on its
// own series, and another letting the agent in does not clear it.
TEST_F(SmtpHostTest, EachMxHostOfATargetShowsItsOwnBackoff) {
    const auto mx_instance = [](std::string host) {
        TargetConfig config = target("domain", host);
        config.mx = "example.test";
        config.instance_labels = {{"mx_host", host}};
        return config;
    };
    const auto first = hosts_.link(mx_instance("a.example.test"));
    const auto second = hosts_.link(mx_instance("b.example.test"));
    ASSERT_NE(&first->host(), &second->host());
    EXPECT_EQ(backoff_active(registry_, "domain"), std::nullopt);  // no series without mx_host

    first->host().session_ended(25, throttled(), kStart);
    second->host().session_ended(25, Outcome{}, kStart + seconds(1));
    EXPECT_EQ(backoff_active(registry_, "domain", "a.example.test"), 1);
    EXPECT_EQ(backoff_active(registry_, "domain", "b.example.test"), 0);
}

TEST_F(SmtpHostTest, TheFamiliesOfOneHostShareItsBackoffSeries) {
    TargetConfig v4 = target("dual", "mx.example.test");
    v4.instance_labels = {{"ip_family", "v4"}};
    TargetConfig v6 = target("dual", "mx.example.test");
    v6.instance_labels = {{"ip_family", "v6"}};
    const auto first = hosts_.link(v4);
    const auto second = hosts_.link(v6);
    second->host().session_ended(25, throttled(), kStart);
    EXPECT_EQ(backoff_active(registry_, "dual"), 1);
}

TEST_F(SmtpHostTest, AnotherPortOfTheHostHasItsOwnBackoffButSharesTheBudget) {
    TargetConfig mx = target("mx", "mx.example.test");
    mx.max_connections_per_minute = 2;
    TargetConfig submission = target("submission", "mx.example.test");
    submission.port = 587;
    const auto a = hosts_.link(mx);
    const auto b = hosts_.link(submission);
    SmtpHost& host = a->host();
    host.session_ended(587, throttled(), kStart);
    EXPECT_EQ(host.admit(*b, false, kStart + seconds(1)), HeldBack::backoff);
    EXPECT_EQ(backoff_active(registry_, "submission"), 1);
    EXPECT_EQ(backoff_active(registry_, "mx"), 0);
    EXPECT_EQ(host.admit(*a, false, kStart + seconds(1)), std::nullopt);
    // Port 25 letting the agent in says nothing about 587.
    host.session_ended(25, Outcome{}, kStart + seconds(2));
    EXPECT_TRUE(host.backing_off(587));
    EXPECT_EQ(host.admit(*b, false, kStart + seconds(30)), std::nullopt);
    EXPECT_EQ(host.admit(*a, false, kStart + seconds(31)), HeldBack::connection_budget);
}

TEST_F(SmtpHostTest, ConnectionBudgetIsSharedAndTheSmallestWins) {
    TargetConfig loose = target("loose", "mx.example.test");
    loose.max_connections_per_minute = 5;
    TargetConfig strict = target("strict", "mx.example.test");
    strict.max_connections_per_minute = 3;
    const auto a = hosts_.link(loose);
    auto b = hosts_.link(strict);
    const auto unlimited = hosts_.link(target("unlimited", "mx.example.test"));
    SmtpHost& host = a->host();
    EXPECT_EQ(host.admit(*a, false, kStart), std::nullopt);
    EXPECT_EQ(host.admit(*unlimited, false, kStart + seconds(1)), std::nullopt);
    EXPECT_EQ(host.admit(*b, false, kStart + seconds(2)), std::nullopt);
    EXPECT_EQ(host.admit(*unlimited, false, kStart + seconds(3)), HeldBack::connection_budget);
    EXPECT_EQ(host.admit(*a, false, kStart + seconds(59)), HeldBack::connection_budget);
    EXPECT_EQ(host.admit(*a, false, kStart + seconds(60)), std::nullopt);

    // The strict target goes (a reload): the loose one's budget is the host's, 5 in a minute
    // (the use at 60 s and four more).
    b.reset();
    for (int second = 61; second <= 64; ++second) {
        EXPECT_EQ(host.admit(*a, false, kStart + seconds(second)), std::nullopt) << second;
    }
    EXPECT_EQ(host.admit(*a, false, kStart + seconds(65)), HeldBack::connection_budget);
    EXPECT_EQ(backoff_active(registry_, "strict"), std::nullopt);  // its series went with it
}

TEST_F(SmtpHostTest, MessageBudgetIsPerAccountAndSpendsNoConnection) {
    TargetConfig strict_config = sender("strict", "canary@example.org", 2);
    strict_config.max_connections_per_minute = 3;
    const auto strict = hosts_.link(strict_config);
    const auto loose = hosts_.link(sender("loose", "canary@example.org", 10));
    const auto other_account = hosts_.link(sender("other", "other@example.org", 10));
    SmtpHost& host = strict->host();

    EXPECT_EQ(host.admit(*loose, true, kStart), std::nullopt);
    EXPECT_EQ(host.admit(*strict, true, kStart + seconds(1)), std::nullopt);
    // Two messages from the account this hour: a third waits, and costs no connection.
    EXPECT_EQ(host.admit(*loose, true, kStart + seconds(2)), HeldBack::message_budget);
    EXPECT_EQ(host.admit(*other_account, true, kStart + seconds(3)), std::nullopt);
    EXPECT_EQ(host.admit(*other_account, true, kStart + seconds(4)), HeldBack::connection_budget);
    // A run that sends nothing (connect, or mode = "rcpt") spends no message.
    EXPECT_EQ(host.admit(*strict, false, kStart + minutes(1) + seconds(1)), std::nullopt);
    EXPECT_EQ(host.admit(*strict, true, kStart + minutes(59)), HeldBack::message_budget);
    EXPECT_EQ(host.admit(*strict, true, kStart + minutes(60)), std::nullopt);
}

TEST_F(SmtpHostTest, TheLoginIsTheAccountWhenThereIsOne) {
    TargetConfig first = sender("first", "a@example.org", 1);
    first.auth = AuthConfig{};
    first.auth->username = "submitter";
    TargetConfig second = sender("second", "b@example.org", 1);
    second.auth = AuthConfig{};
    second.auth->username = "submitter";
    const auto a = hosts_.link(first);
    const auto b = hosts_.link(second);
    EXPECT_EQ(a->host().admit(*a, true, kStart), std::nullopt);
    EXPECT_EQ(b->host().admit(*b, true, kStart + seconds(1)), HeldBack::message_budget);
}

TEST_F(SmtpHostTest, RcptModeSendsNoMessage) {
    TargetConfig config = sender("rcpt", "canary@example.org", 1);
    config.message->mode = AcceptMode::rcpt;
    EXPECT_EQ(politeness_of(config).account, "");
    const auto link = hosts_.link(config);
    EXPECT_EQ(link->host().admit(*link, true, kStart), std::nullopt);
    EXPECT_EQ(link->host().admit(*link, true, kStart + seconds(1)), std::nullopt);
}

}  // namespace
}  // namespace mailcanary
