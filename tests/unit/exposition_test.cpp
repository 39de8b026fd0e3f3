#include "agent/exposition.hpp"

#include <prometheus/text_serializer.h>

#include <gtest/gtest.h>

#include <limits>

namespace mailcanary {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric sample(std::vector<ClientMetric::Label> labels) {
    ClientMetric metric;
    metric.label = std::move(labels);
    return metric;
}

std::string ours(const std::vector<MetricFamily>& families) {
    std::string text;
    append_text_format(families, text);
    return text;
}

// Every type, and the numbers whose spelling a dashboard could depend on: bucket bounds such as
// 0.0001 and 100 (not 1e-04 and 1e+02), Unix timestamps, integers beyond 2^53, infinities.
std::vector<MetricFamily> families_of_every_kind() {
    std::vector<MetricFamily> families;

    MetricFamily counter{"runs_total", "Runs completed.", MetricType::Counter, {}};
    for (const double value : {0.0, 1.0, 7.0, 123456789012345678.0, 0.1, 2.5e-7}) {
        auto metric = sample({{"probe", "connect"}, {"target", "mx \"1\" \\ a"}});
        metric.counter.value = value;
        counter.metric.push_back(metric);
    }
    families.push_back(counter);

    MetricFamily gauge{"last_run_timestamp_seconds", "", MetricType::Gauge, {}};
    for (const double value :
         {1795953946.857430, -2.5, 1e21, 1e-300, std::numeric_limits<double>::infinity(),
          -std::numeric_limits<double>::infinity(), 100.0}) {
        auto metric = sample({{"target", "mx"}});
        metric.gauge.value = value;
        gauge.metric.push_back(metric);
    }
    auto stamped = sample({});
    stamped.gauge.value = 3;
    stamped.timestamp_ms = 1795953946857;
    gauge.metric.push_back(stamped);
    families.push_back(gauge);

    MetricFamily histogram{"phase_duration_seconds", "Phases.", MetricType::Histogram, {}};
    auto observed = sample({{"phase", "banner"}});
    observed.histogram.sample_count = 12;
    observed.histogram.sample_sum = 1.359034554000003;
    for (const double bound : {0.0001, 0.0005, 0.025, 1.0, 2.5, 100.0}) {
        observed.histogram.bucket.push_back({observed.histogram.bucket.size() + 1, bound});
    }
    histogram.metric.push_back(observed);
    auto with_infinity = sample({});  // an explicit +Inf bucket is not repeated
    with_infinity.histogram.sample_count = 2;
    with_infinity.histogram.bucket = {{1, 0.5}, {2, std::numeric_limits<double>::infinity()}};
    histogram.metric.push_back(with_infinity);
    families.push_back(histogram);

    MetricFamily summary{"rpc_seconds", "A summary.", MetricType::Summary, {}};
    auto quantiles = sample({{"method", "x"}});
    quantiles.summary = {5, 0.75, {{0.5, 0.125}, {0.99, 0.25}}};
    summary.metric.push_back(quantiles);
    families.push_back(summary);

    MetricFamily untyped{"legacy", "Untyped.", MetricType::Untyped, {}};
    auto value = sample({});
    value.untyped.value = 42;
    untyped.metric.push_back(value);
    families.push_back(untyped);
    return families;
}

TEST(Exposition, WritesWhatPrometheusCppWrites) {
    const auto families = families_of_every_kind();
    EXPECT_EQ(ours(families), prometheus::TextSerializer().Serialize(families));
}

TEST(Exposition, SpellsBucketBoundsAsBefore) {
    const auto text = ours(families_of_every_kind());
    EXPECT_NE(text.find("phase_duration_seconds_bucket{phase=\"banner\",le=\"0.0001\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("phase_duration_seconds_bucket{phase=\"banner\",le=\"100\"} 6\n"),
              std::string::npos);
    EXPECT_NE(text.find("phase_duration_seconds_bucket{phase=\"banner\",le=\"+Inf\"} 12\n"),
              std::string::npos);
    EXPECT_NE(text.find("last_run_timestamp_seconds{target=\"mx\"} 1795953946.85743\n"),
              std::string::npos);
    EXPECT_NE(text.find("last_run_timestamp_seconds 3 1795953946857\n"), std::string::npos);
}

TEST(Exposition, EscapesAsTheFormatRequires) {
    // prometheus-cpp 1.0.1 writes a line feed as a backslash and a raw line feed, which ends the
    // line; and it does not escape HELP. Both are written as the format says here.
    MetricFamily family{"up", "first line\nsecond \\ \"quoted\"", MetricType::Gauge, {}};
    auto metric = sample({{"target", "a\nb"}});
    metric.gauge.value = std::numeric_limits<double>::quiet_NaN();
    family.metric.push_back(metric);
    EXPECT_EQ(ours({family}),
              "# HELP up first line\\nsecond \\\\ \"quoted\"\n"
              "# TYPE up gauge\n"
              "up{target=\"a\\nb\"} NaN\n");
}

TEST(Exposition, AppendsToWhatIsThere) {
    std::string text = "# already here\n";
    append_text_format({}, text);
    EXPECT_EQ(text, "# already here\n");
    MetricFamily family{"up", "", MetricType::Gauge, {sample({})}};
    append_text_format({family}, text);
    EXPECT_EQ(text, "# already here\n# TYPE up gauge\nup 0\n");
}

}  // namespace
}  // namespace mailcanary
