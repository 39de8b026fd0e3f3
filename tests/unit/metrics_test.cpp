#include "agent/metrics.hpp"
#include "agent/version.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "probes/roundtrip_probe.hpp"
#include "support/exposition.hpp"

namespace mailcanary {
namespace {

using test::value_of;

using namespace std::chrono_literals;

RunMetrics tls_run(std::string version, std::string cipher) {
    RunMetrics run;
    run.add_phase(Phase::connect, 2ms);
    run.add_phase(Phase::ehlo, 1ms);
    run.add_phase(Phase::ehlo, 3ms);  // before and after STARTTLS: they add up
    run.replies = {{"banner", 220}, {"ehlo", 250}, {"quit", 221}};
    run.cert_not_after = std::chrono::system_clock::time_point(1'900'000'000s);
    run.tls_version = std::move(version);
    run.tls_cipher = std::move(cipher);
    return run;
}

const auto kFinished = std::chrono::system_clock::time_point(1'800'000'000s);

TEST(Metrics, NoResultSeriesBeforeTheFirstRun) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    auto series = metrics.series_for("mx", "connect");
    const auto text = metrics.serialize();
    // A 0 here would read as "the probe failed" to every alert.
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{probe="connect",target="mx"})"), -1);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_last_success_timestamp_seconds{probe="connect",target="mx"})"),
        -1);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="mx"})"), 0);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_skipped_total{probe="connect",reason="overlap",target="mx"})"),
        0);
    EXPECT_EQ(value_of(text, "mailcanary_build_info{revision=\"" + std::string(revision()) +
                                 "\",version=\"" + std::string(version()) + "\"}"),
              1);
}

TEST(Metrics, ShardInfoShowsTheShardInForceOnly) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    metrics.set_shard(Shard{2, 3});
    auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_shard_info{count="3",index="2"})"), 1);
    metrics.set_shard(Shard{0, 4});  // a reload that changed shard_count
    text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_shard_info{count="3",index="2"})"), -1);
    EXPECT_EQ(value_of(text, R"(mailcanary_shard_info{count="4",index="0"})"), 1);
}

TEST(Metrics, RecordsASuccessfulRun) {
    Metrics metrics(MetricsConfig{{0.001, 0.005}, true});
    auto series = metrics.series_for("mx", "connect");
    series->record_run(Outcome{}, tls_run("TLSv1.3", "TLS_AES_256_GCM_SHA384"), 7ms, kFinished);
    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{probe="connect",target="mx"})"), 1);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_last_success_timestamp_seconds{probe="connect",target="mx"})"),
        1.8e9);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_probe_duration_seconds_bucket{probe="connect",target="mx",le="0.005"})"),
        0);
    EXPECT_DOUBLE_EQ(
        value_of(text, R"(mailcanary_probe_duration_seconds_sum{probe="connect",target="mx"})"),
        0.007);
    EXPECT_DOUBLE_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_sum{phase="ehlo",probe="connect",target="mx"})"),
        0.004);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_duration_seconds_count{phase="banner",probe="connect",target="mx"})"),
        -1);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_smtp_replies_total{code="250",command="ehlo",probe="connect",target="mx"})"),
        1);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="connect",target="mx"})"),
        1.9e9);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_tls_info{cipher="TLS_AES_256_GCM_SHA384",probe="connect",target="mx",version="TLSv1.3"})"),
        1);
    EXPECT_EQ(text.find("mailcanary_probe_failures_total{"), std::string::npos);
}

TEST(Metrics, FailureKeepsTheLastSuccessTimeAndCountsTheReason) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    auto series = metrics.series_for("mx", "connect");
    series->record_run(Outcome{}, RunMetrics{}, 1ms, kFinished);
    series->record_run(Outcome::failed(FailureReason::banner_timeout, "x"), RunMetrics{}, 1ms,
                       kFinished + 30s);
    series->record_run(Outcome::failed(FailureReason::banner_timeout, "x"), RunMetrics{}, 1ms,
                       kFinished + 60s);
    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{probe="connect",target="mx"})"), 0);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_last_success_timestamp_seconds{probe="connect",target="mx"})"),
        1.8e9);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_last_run_timestamp_seconds{probe="connect",target="mx"})"),
        1.8e9 + 60);
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_probe_failures_total{probe="connect",reason="banner_timeout",target="mx"})"),
        2);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="mx"})"), 3);
}

TEST(Metrics, TlsInfoFollowsTheNegotiatedParameters) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    auto series = metrics.series_for("mx", "connect");
    series->record_run(Outcome{}, tls_run("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"), 1ms,
                       kFinished);
    series->record_run(Outcome{}, tls_run("TLSv1.3", "TLS_AES_128_GCM_SHA256"), 1ms, kFinished);
    const auto text = metrics.serialize();
    EXPECT_EQ(text.find("TLSv1.2"), std::string::npos) << "the old combination must not linger";
    EXPECT_NE(text.find(R"(mailcanary_tls_info{cipher="TLS_AES_128_GCM_SHA256")"),
              std::string::npos);
}

// A certificate that verification refused is still what the server showed: its facts and the
// negotiated parameters are exported as for a verified one.
TEST(Metrics, TlsFactsOfARefusedCertificateAreExported) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    auto series = metrics.series_for("mx", "connect");
    RunMetrics run = tls_run("TLSv1.3", "TLS_AES_256_GCM_SHA384");
    run.certificate = CertificateFacts{.subject = R"(CN=mx.example.com,O=Say \"hi\")",
                                       .issuer = "CN=mx.example.com",
                                       .alt_names = {"mx.example.com", "192.0.2.7"},
                                       .not_before = {},
                                       .not_after = {}};
    series->record_run(Outcome::failed(FailureReason::tls_cert_untrusted, "self-signed"), run, 1ms,
                       kFinished);
    const auto text = metrics.serialize();
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_tls_info{cipher="TLS_AES_256_GCM_SHA384",probe="connect",target="mx",version="TLSv1.3"})"),
        1)
        << text;
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_tls_cert_info{issuer="CN=mx.example.com",probe="connect",sans="mx.example.com,192.0.2.7",subject="CN=mx.example.com,O=Say \\\"hi\\\"",target="mx"})"),
        1)
        << text;
}

TEST(Metrics, LastDurationGaugesInsteadOfPhaseHistograms) {
    Metrics metrics(MetricsConfig{{0.01}, false});
    auto series = metrics.series_for("mx", "connect");
    series->record_run(Outcome{}, tls_run("TLSv1.3", "X"), 1ms, kFinished);
    auto text = metrics.serialize();
    EXPECT_EQ(text.find("mailcanary_probe_phase_duration_seconds_bucket"), std::string::npos);
    EXPECT_DOUBLE_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_last_duration_seconds{phase="ehlo",probe="connect",target="mx"})"),
        0.004);
    EXPECT_DOUBLE_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_last_duration_seconds{phase="connect",probe="connect",target="mx"})"),
        0.002);

    // A run that never reached EHLO: its last EHLO time must not linger from an earlier run.
    RunMetrics refused;
    refused.add_phase(Phase::connect, 1ms);
    series->record_run(Outcome::failed(FailureReason::connect_refused, ""), refused, 1ms,
                       kFinished);
    text = metrics.serialize();
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_last_duration_seconds{phase="ehlo",probe="connect",target="mx"})"),
        -1);
    EXPECT_DOUBLE_EQ(
        value_of(
            text,
            R"(mailcanary_probe_phase_last_duration_seconds{phase="connect",probe="connect",target="mx"})"),
        0.001);
}

TEST(Metrics, DestroyingTheSeriesRemovesEverySeriesOfThePair) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    auto kept = metrics.series_for("kept", "connect");
    auto removed = metrics.series_for("removed", "connect");
    for (auto* series : {kept.get(), removed.get()}) {
        series->record_run(Outcome::failed(FailureReason::closed, ""), tls_run("TLSv1.3", "X"), 1ms,
                           kFinished);
        series->record_skip(SkipReason::stalled);
    }
    removed.reset();
    const auto text = metrics.serialize();
    EXPECT_EQ(text.find("target=\"removed\""), std::string::npos) << text;
    EXPECT_NE(text.find("target=\"kept\""), std::string::npos);
}

// The roundtrip probe's own series, made by the kind as the scheduler makes them.
struct RoundtripFixture {
    explicit RoundtripFixture(Metrics& metrics)
        : resources(io.get_executor(), metrics.registry(), metrics.config().duration_buckets) {}
    std::unique_ptr<ProbeSeries> series_for(Metrics& metrics, const std::string& target) {
        TargetConfig instance;
        instance.name = target;
        return series_for(metrics, instance);
    }
    std::unique_ptr<ProbeSeries> series_for(Metrics& metrics, const TargetConfig& instance) {
        return metrics.series_for(instance, "roundtrip",
                                  roundtrip_probe().extra_series(resources, instance));
    }
    boost::asio::io_context io;
    ProbeResources resources;
};

// The two instances of an `ip = "both"` target: each family its own series, told apart by
// ip_family, in the common series and in the kind's own; an `auto` target keeps its bare ones.
TEST(DualStackMetrics, EachFamilyHasItsOwnSeriesWithAnIpFamilyLabel) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    RoundtripFixture roundtrip(metrics);
    TargetConfig dual;
    dual.name = "mx";
    dual.ip = IpChoice::both;
    TargetConfig plain;
    plain.name = "plain";
    const auto instances = expand_instances({dual, plain});
    ASSERT_EQ(instances.size(), 3u);
    auto v4 = roundtrip.series_for(metrics, instances[0]);
    auto v6 = roundtrip.series_for(metrics, instances[1]);
    auto bare = metrics.series_for(instances[2], "connect");
    v4->record_run(Outcome{}, RunMetrics{}, 5ms, kFinished);
    v6->record_run(Outcome::failed(FailureReason::connect_refused, "refused"), RunMetrics{}, 5ms,
                   kFinished);
    v6->record_run(Outcome::failed(FailureReason::lost, "not delivered"), RunMetrics{}, 5ms,
                   kFinished);
    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{ip_family="v4",probe="roundtrip",)"
                             R"(target="mx"})"),
              1)
        << text;
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_success{ip_family="v6",probe="roundtrip",)"
                             R"(target="mx"})"),
              0);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_failures_total{ip_family="v6",probe="roundtrip",)"
                             R"(reason="connect_refused",target="mx"})"),
              1);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_consecutive_failures{ip_family="v6",)"
                             R"(probe="roundtrip",target="mx"})"),
              2);
    // No series of the target without the label: it would be a third, stale identity.
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{probe="roundtrip",target="mx"})"), -1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_lost_total{ip_family="v6",target="mx"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_lost_total{ip_family="v4",target="mx"})"), 0);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_delivered_total{folder="inbox",)"
                             R"(ip_family="v4",target="mx"})"),
              0);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="plain"})"), 0);
    // Removing one family's series leaves the other's.
    v6.reset();
    const auto after = metrics.serialize();
    EXPECT_EQ(value_of(after, R"(mailcanary_roundtrip_lost_total{ip_family="v6",target="mx"})"),
              -1);
    EXPECT_EQ(value_of(after, R"(mailcanary_probe_runs_total{ip_family="v4",probe="roundtrip",)"
                              R"(target="mx"})"),
              1);
}

TEST(RoundtripMetrics, ExistAtZeroFromSchedulingSoTheFirstLossIsAnIncrease) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    RoundtripFixture roundtrip(metrics);
    auto series = roundtrip.series_for(metrics, "mx");
    auto connect = metrics.series_for("other", "connect");
    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_lost_total{target="mx"})"), 0);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_late_total{target="mx"})"), 0);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_pending{target="mx"})"), 0);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_delivered_total{folder="junk",target="mx"})"),
              0);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_seconds_count{target="mx"})"), 0);
    // Other probes have none, and no verdict exists before a message brought one.
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_lost_total{target="other"})"), -1);
    EXPECT_EQ(text.find("mailcanary_roundtrip_auth_result{"), std::string::npos);
}

TEST(RoundtripMetrics, RecordsDeliveryVerdictsLossAndEventsOutsideRuns) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    RoundtripFixture roundtrip(metrics);
    auto series = roundtrip.series_for(metrics, "mx");
    RunMetrics delivered;
    delivered.submission = 30ms;
    delivered.delivery = RunMetrics::Delivery{};
    delivered.delivery->after_acceptance = 700ms;
    delivered.delivery->verdicts.spf = "pass";
    delivered.delivery->verdicts.dkim = "fail";
    delivered.delivery->by_server_clocks = 1s;
    series->record_run(Outcome{}, delivered, 800ms, kFinished);
    series->record_run(Outcome::failed(FailureReason::lost, "not delivered"), RunMetrics{}, 2min,
                       kFinished);
    roundtrip_events(roundtrip.resources).message_late("mx");
    roundtrip_events(roundtrip.resources).pending_changed("mx", 3);
    roundtrip_events(roundtrip.resources).leftover_removed("u@imap:993/INBOX");
    roundtrip_events(roundtrip.resources).message_late("removed-target");  // ignored, no crash

    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_seconds_count{target="mx"})"), 1);
    EXPECT_DOUBLE_EQ(value_of(text, R"(mailcanary_roundtrip_seconds_sum{target="mx"})"), 0.7);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_seconds_bucket{target="mx",le="1"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_submission_seconds_count{target="mx"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_delivered_total{folder="inbox",target="mx"})"),
              1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_lost_total{target="mx"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_late_total{target="mx"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_pending{target="mx"})"), 3);
    EXPECT_EQ(value_of(text, R"(mailcanary_roundtrip_server_clock_delivery_seconds{target="mx"})"),
              1);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_roundtrip_leftovers_removed_total{mailbox="u@imap:993/INBOX"})"),
        1);
    const auto verdict = [&](const char* method, const char* result) {
        return value_of(text, std::string(R"(mailcanary_roundtrip_auth_result{method=")") + method +
                                  R"(",result=")" + result + R"(",target="mx"})");
    };
    EXPECT_EQ(verdict("spf", "pass"), 1);
    EXPECT_EQ(verdict("spf", "softfail"), 0);
    EXPECT_EQ(verdict("dkim", "fail"), 1);
    EXPECT_EQ(verdict("dkim", "pass"), 0);
    EXPECT_EQ(verdict("dmarc", "none"), -1);  // the message said nothing about DMARC

    // A removed target takes all its roundtrip series with it.
    series.reset();
    const auto after = metrics.serialize();
    EXPECT_EQ(after.find("target=\"mx\""), std::string::npos) << after;
}

TEST(Metrics, CountsFailuresInARowUntilASuccess) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    auto series = metrics.series_for("mx", "connect");
    const std::string consecutive =
        R"(mailcanary_probe_consecutive_failures{probe="connect",target="mx"})";
    EXPECT_EQ(value_of(metrics.serialize(), consecutive), -1);
    const auto refused = Outcome::failed(FailureReason::connect_refused, "refused");
    series->record_run(refused, RunMetrics{}, 1ms, kFinished);
    series->record_run(refused, RunMetrics{}, 1ms, kFinished);
    EXPECT_EQ(value_of(metrics.serialize(), consecutive), 2);
    series->record_run(Outcome{}, RunMetrics{}, 1ms, kFinished);
    EXPECT_EQ(value_of(metrics.serialize(), consecutive), 0);
    series->record_run(refused, RunMetrics{}, 1ms, kFinished);
    EXPECT_EQ(value_of(metrics.serialize(), consecutive), 1);
}

// /metrics renders beside the loop: a reload changes the targets, then marks itself done, so the
// reload gauge must be read before the targets' series for a scrape never to show a reload done
// with its removed targets still in it.
TEST(Metrics, AgentWideSeriesComeBeforeThePerTargetOnes) {
    Metrics metrics(MetricsConfig{{0.01}, true});
    metrics.record_reload(true, kFinished);
    auto series = metrics.series_for("mx", "connect");
    const auto text = metrics.serialize();
    const auto reload = text.find("mailcanary_config_last_reload_successful ");
    const auto runs = text.find("mailcanary_probe_runs_total{");
    ASSERT_NE(reload, std::string::npos);
    ASSERT_NE(runs, std::string::npos);
    EXPECT_LT(reload, runs);
}

TEST(Metrics, HistogramBucketsIncludeTheirBoundAndAccumulate) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    auto series = metrics.series_for("mx", "connect");
    for (const auto duration : {5ms, 10ms, 50ms, 2000ms}) {
        series->record_run(Outcome{}, RunMetrics{}, duration, kFinished);
    }
    const auto text = metrics.serialize();
    const std::string name = "mailcanary_probe_duration_seconds";
    const std::string labels = R"(probe="connect",target="mx")";
    EXPECT_EQ(value_of(text, name + "_bucket{" + labels + ",le=\"0.01\"}"), 2);
    EXPECT_EQ(value_of(text, name + "_bucket{" + labels + ",le=\"0.1\"}"), 3);
    EXPECT_EQ(value_of(text, name + "_bucket{" + labels + ",le=\"+Inf\"}"), 4);
    EXPECT_EQ(value_of(text, name + "_count{" + labels + "}"), 4);
    EXPECT_DOUBLE_EQ(value_of(text, name + "_sum{" + labels + "}"), 2.065);
}

TEST(Metrics, SerializesWhileRunsAreRecordedAndSeriesComeAndGo) {
    Metrics metrics(MetricsConfig{{0.01, 0.1}, true});
    auto series = metrics.series_for("mx", "connect");
    std::atomic<bool> done{false};
    std::atomic<std::size_t> scrapes{0};
    std::thread scraper([&] {
        while (!done) {
            EXPECT_NE(metrics.serialize().find("mailcanary_probe_runs_total"), std::string::npos);
            ++scrapes;
        }
    });
    int runs = 0;
    for (int i = 0; i < 2000 || scrapes < 20; ++i, ++runs) {
        series->record_run(i % 2 ? Outcome{} : Outcome::failed(FailureReason::closed, ""),
                           tls_run("TLSv1.3", "X"), 1ms, kFinished);
        auto passing = metrics.series_for("passing-" + std::to_string(i % 7), "connect");
        passing->record_skip(SkipReason::overlap);
    }
    done = true;
    scraper.join();
    const auto text = metrics.serialize();
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target="mx"})"), runs);
    EXPECT_EQ(text.find("passing-"), std::string::npos);
}

}  // namespace
}  // namespace mailcanary
