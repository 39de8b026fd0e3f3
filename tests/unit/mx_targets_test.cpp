// An `mx` target's instances from an MX lookup (agent/mx_targets.hpp): one per MX host in
// preference order, the bound, the one failing instance when no host can be probed, and the
// change detection behind mailcanary_mx_changes_total.
#include "agent/mx_targets.hpp"

#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

namespace mailcanary {
namespace {

TargetConfig mx_target(IpChoice ip = IpChoice::automatic) {
    TargetConfig target;
    target.name = "domain";
    target.mx = "example.net";
    target.ip = ip;
    target.port = 2525;
    return target;
}

MxLookup answered(std::vector<MxRecord> records) {
    MxLookup lookup;
    lookup.result = MxLookup::Result::records;
    lookup.records = std::move(records);
    return lookup;
}

MxLookup without_records(MxLookup::Result result, std::string error = "") {
    MxLookup lookup;
    lookup.result = result;
    lookup.error = std::move(error);
    return lookup;
}

TEST(MxInstances, OnePerHostInTheOrderOfTheLookupLabelledByHost) {
    // The resolver sorts by preference, ties by name; the instances keep that order.
    const auto made = mx_instances(
        mx_target(),
        answered({{10, "a.example.net"}, {10, "b.example.net"}, {20, "backup.example.net"}}),
        std::nullopt);
    EXPECT_FALSE(made.failure);
    ASSERT_EQ(made.instances.size(), 3u);
    const std::vector<std::string> hosts{"a.example.net", "b.example.net", "backup.example.net"};
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const TargetConfig& instance = made.instances[i];
        EXPECT_EQ(instance.name, "domain");
        EXPECT_EQ(instance.host, hosts[i]);
        EXPECT_EQ(instance.port, 2525);
        EXPECT_EQ(instance.instance_labels, (InstanceLabels{{"mx_host", hosts[i]}}));
    }
    EXPECT_EQ(made.instances[2].instance_key(), R"(domain{mx_host="backup.example.net"})");
    EXPECT_EQ(made.probed.size(), 3u);
    EXPECT_EQ(made.probed[2], (MxRecord{20, "backup.example.net"}));
    EXPECT_EQ(made.dropped, 0u);
}

TEST(MxInstances, IpBothMakesTwoPerHostMxHostFirst) {
    const auto made =
        mx_instances(mx_target(IpChoice::both),
                     answered({{10, "a.example.net"}, {20, "b.example.net"}}), std::nullopt);
    ASSERT_EQ(made.instances.size(), 4u);
    EXPECT_EQ(made.instances[0].instance_key(),
              R"(domain{mx_host="a.example.net",ip_family="v4"})");
    EXPECT_EQ(made.instances[0].ip_family, IpFamily::v4);
    EXPECT_EQ(made.instances[1].instance_key(),
              R"(domain{mx_host="a.example.net",ip_family="v6"})");
    EXPECT_EQ(made.instances[1].ip_family, IpFamily::v6);
    EXPECT_EQ(made.instances[2].instance_key(),
              R"(domain{mx_host="b.example.net",ip_family="v4"})");
}

TEST(MxInstances, ANullMxBesideOtherRecordsIsNoHost) {
    const auto made =
        mx_instances(mx_target(), answered({{0, ""}, {10, "a.example.net"}}), std::nullopt);
    EXPECT_FALSE(made.failure);
    ASSERT_EQ(made.instances.size(), 1u);
    EXPECT_EQ(made.instances[0].host, "a.example.net");
    EXPECT_EQ(made.probed, (std::vector<MxRecord>{{10, "a.example.net"}}));
}

TEST(MxInstances, AtMostTenHostsTheLeastPreferredDropped) {
    std::vector<MxRecord> records;
    for (uint16_t i = 0; i < 13; ++i)
        records.push_back({i, "mx" + std::to_string(i) + ".example.net"});
    const auto made = mx_instances(mx_target(), answered(records), std::nullopt);
    ASSERT_EQ(made.instances.size(), kMaxMxHosts);
    EXPECT_EQ(made.probed.size(), kMaxMxHosts);
    EXPECT_EQ(made.dropped, 3u);
    EXPECT_EQ(made.instances.back().host, "mx9.example.net");
}

// No host to probe: one instance without labels (whatever `ip` says) whose runs fail.
void expect_one_failing(const MxInstances& made, FailureReason reason, std::string_view detail) {
    ASSERT_EQ(made.instances.size(), 1u);
    EXPECT_TRUE(made.instances[0].instance_labels.empty());
    EXPECT_EQ(made.instances[0].instance_key(), "domain");
    EXPECT_TRUE(made.probed.empty());
    ASSERT_TRUE(made.failure);
    EXPECT_EQ(to_string(made.failure->reason), to_string(reason));
    EXPECT_NE(made.failure->detail.find(detail), std::string::npos) << made.failure->detail;
}

TEST(MxInstances, NoMxIsMxNone) {
    expect_one_failing(
        mx_instances(mx_target(IpChoice::both),
                     without_records(MxLookup::Result::no_mx, "no MX record (NODATA from x)"),
                     std::nullopt),
        FailureReason::mx_none, "example.net: no MX record (NODATA from x)");
}

TEST(MxInstances, NullMxIsMxNoneSayingRfc7505) {
    auto lookup = without_records(MxLookup::Result::null_mx);
    lookup.records = {{0, ""}};
    expect_one_failing(mx_instances(mx_target(), lookup, std::nullopt), FailureReason::mx_none,
                       "null MX (RFC 7505");
}

TEST(MxInstances, NoDomainAndFailedLookupsAreDns) {
    expect_one_failing(
        mx_instances(mx_target(),
                     without_records(MxLookup::Result::no_domain, "NXDOMAIN from 127.0.0.1:53"),
                     std::nullopt),
        FailureReason::dns, "MX records of example.net: NXDOMAIN from 127.0.0.1:53");
    expect_one_failing(
        mx_instances(mx_target(), without_records(MxLookup::Result::failed, "SERVFAIL from y"),
                     std::nullopt),
        FailureReason::dns, "SERVFAIL from y");
}

// A SERVFAIL or a timeout says nothing about the set: the hosts last answered stay (their series
// go on), each failing with dns; an answer that the domain has no host to probe does not keep
// them.
TEST(MxInstances, AFailedLookupKeepsTheHostsLastAnsweredFailingWithDns) {
    const auto two = answered({{10, "a.example.net"}, {20, "b.example.net"}});
    const auto failed = without_records(MxLookup::Result::failed, "SERVFAIL from y");
    const auto kept = mx_instances(mx_target(IpChoice::both), failed, two);
    ASSERT_EQ(kept.instances.size(), 4u);
    EXPECT_EQ(kept.instances[3].instance_key(),
              R"(domain{mx_host="b.example.net",ip_family="v6"})");
    EXPECT_EQ(kept.probed, two.records);
    ASSERT_TRUE(kept.failure);
    EXPECT_EQ(to_string(kept.failure->reason), "dns");
    EXPECT_NE(kept.failure->detail.find("SERVFAIL from y"), std::string::npos);

    expect_one_failing(
        mx_instances(mx_target(), without_records(MxLookup::Result::no_domain, "NXDOMAIN from z"),
                     two),
        FailureReason::dns, "NXDOMAIN from z");
    expect_one_failing(mx_instances(mx_target(), failed, without_records(MxLookup::Result::no_mx)),
                       FailureReason::dns, "SERVFAIL from y");
}

TEST(MxInstances, LookedUpAgainWhenTheTtlRunsOutWithinTheIntervalNotTooOften) {
    using std::chrono::seconds;
    auto lookup = answered({{10, "a.example.net"}});
    lookup.ttl = seconds(60);
    EXPECT_EQ(next_mx_lookup(seconds(300), lookup), seconds(60));
    EXPECT_EQ(next_mx_lookup(seconds(30), lookup), seconds(30));  // at least every interval
    lookup.ttl = seconds(1);
    EXPECT_EQ(next_mx_lookup(seconds(300), lookup), kMxLookupFloor);
    lookup.ttl = seconds(0);  // not known: the interval
    EXPECT_EQ(next_mx_lookup(seconds(300), lookup), seconds(300));
    // A failure is tried again soon, not an interval later.
    EXPECT_EQ(next_mx_lookup(seconds(300), without_records(MxLookup::Result::failed)),
              kMxLookupFloor);
    EXPECT_EQ(next_mx_lookup(seconds(2), without_records(MxLookup::Result::failed)), seconds(2));
}

TEST(MxInstances, OnlyRootExchangesAreANullMx) {
    expect_one_failing(mx_instances(mx_target(), answered({{0, ""}, {10, ""}}), std::nullopt),
                       FailureReason::mx_none, "null MX (RFC 7505");
}

// A failed lookup while the last answer's TTL lasts: the instances are made of that answer (a
// resolver answers from its cache then, a sending MTA's too); once it has run out, of the
// failure. An answer of no MX is taken as it comes.
TEST(MxKnowledge, AFailureLeavesTheLastAnswerStandingUntilItsTtlEnds) {
    using std::chrono::seconds;
    const auto t0 = MxKnowledge::Clock::time_point() + std::chrono::hours(1000);
    MxKnowledge known;
    EXPECT_EQ(known.basis(t0), nullptr);
    auto two = answered({{10, "a.example.net"}, {20, "b.example.net"}});
    two.ttl = seconds(60);
    known.take(two, t0, seconds(300));
    const auto failed = without_records(MxLookup::Result::failed, "SERVFAIL from y");
    known.take(failed, t0 + seconds(30), seconds(300));
    ASSERT_NE(known.basis(t0 + seconds(59)), nullptr);
    EXPECT_EQ(known.basis(t0 + seconds(59))->records, two.records);
    EXPECT_EQ(known.basis(t0 + seconds(60))->result, MxLookup::Result::failed);
    const auto kept =
        mx_instances(mx_target(), *known.basis(t0 + seconds(60)), known.last_answer());
    EXPECT_EQ(kept.instances.size(), 2u);
    ASSERT_TRUE(kept.failure);
    EXPECT_EQ(to_string(kept.failure->reason), "dns");

    known.take(without_records(MxLookup::Result::no_mx), t0 + seconds(61), seconds(300));
    EXPECT_EQ(known.basis(t0 + seconds(61))->result, MxLookup::Result::no_mx);
}

// An answer whose TTL is not known lasts one interval (it is looked up again by then anyway),
// not no time at all: one SERVFAIL right after it must not fail every host.
TEST(MxKnowledge, AnAnswerWithoutAKnownTtlLastsOneInterval) {
    using std::chrono::seconds;
    const auto t0 = MxKnowledge::Clock::time_point() + std::chrono::hours(1000);
    MxKnowledge known;
    known.take(answered({{10, "a.example.net"}}), t0, seconds(30));
    known.take(without_records(MxLookup::Result::failed), t0 + seconds(1), seconds(30));
    EXPECT_TRUE(known.last_failed());
    EXPECT_EQ(known.basis(t0 + seconds(29))->result, MxLookup::Result::records);
    EXPECT_EQ(known.basis(t0 + seconds(30))->result, MxLookup::Result::failed);
}

// A last answer that named no host (only root exchanges) leaves nothing to keep: a failure
// after it is the one failing stand-in, not a target without instances.
TEST(MxInstances, AFailureAfterAnAnswerWithoutHostsIsTheStandIn) {
    expect_one_failing(
        mx_instances(mx_target(), without_records(MxLookup::Result::failed, "SERVFAIL from y"),
                     answered({{0, ""}, {10, ""}})),
        FailureReason::dns, "SERVFAIL from y");
}

TEST(MxSetTracker, CountsChangesOfTheAnsweredSetNotTheFirstNorFailures) {
    MxSetTracker tracker;
    const auto two = answered({{10, "a.example.net"}, {20, "b.example.net"}});
    EXPECT_FALSE(tracker.observe(two));  // the first answer
    EXPECT_FALSE(tracker.observe(two));
    EXPECT_FALSE(tracker.observe(without_records(MxLookup::Result::failed, "timeout")));
    EXPECT_FALSE(tracker.observe(two));  // a failure in between is no change
    EXPECT_TRUE(tracker.observe(answered({{10, "a.example.net"}, {30, "b.example.net"}})));
    EXPECT_TRUE(tracker.observe(answered({{10, "a.example.net"}})));
    EXPECT_TRUE(tracker.observe(without_records(MxLookup::Result::no_mx)));
    EXPECT_TRUE(tracker.observe(without_records(MxLookup::Result::null_mx)));
    EXPECT_FALSE(tracker.observe(without_records(MxLookup::Result::null_mx)));
    EXPECT_TRUE(tracker.observe(two));
}

TEST(MxSeries, CountsChangesAndShowsTheHostsWithTheirPreference) {
    prometheus::Registry registry;
    MxSeries series(registry);
    series.set_hosts("domain", {{10, "a.example.net"}, {20, "b.example.net"}}, 0);
    const std::string first = prometheus::TextSerializer().Serialize(registry.Collect());
    EXPECT_NE(first.find(R"(mailcanary_mx_changes_total{target="domain"} 0)"), std::string::npos)
        << first;
    series.count_change("domain");
    series.set_hosts("domain", {{10, "a.example.net"}}, 2);
    const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
    EXPECT_NE(text.find(R"(mailcanary_mx_changes_total{target="domain"} 1)"), std::string::npos)
        << text;
    EXPECT_NE(
        text.find(
            R"(mailcanary_mx_host_info{mx_host="a.example.net",preference="10",target="domain"} 1)"),
        std::string::npos)
        << text;
    EXPECT_EQ(text.find("b.example.net"), std::string::npos) << text;  // gone with the set
    EXPECT_NE(text.find(R"(mailcanary_mx_hosts_dropped{target="domain"} 2)"), std::string::npos);
    series.forget("domain");
    const std::string after = prometheus::TextSerializer().Serialize(registry.Collect());
    EXPECT_EQ(after.find("target=\"domain\""), std::string::npos) << after;
}

}  // namespace
}  // namespace mailcanary
