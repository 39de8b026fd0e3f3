#include "agent/exposition.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace mailcanary {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr double kInfinity = std::numeric_limits<double>::infinity();

void append_value(std::string& out, std::uint64_t value) {
    std::array<char, 24> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), result.ptr);
}

// As prometheus-cpp 1.0.1 writes numbers (printf's %.16g): dashboards and alerts select buckets
// by the text of `le`.
void append_value(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
    } else if (std::isinf(value)) {
        out += value < 0 ? "-Inf" : "+Inf";
    } else {
        std::array<char, 32> buffer{};  // at most "-1.234567890123456e-308": 23
        const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                          std::chars_format::general, 16);
        out.append(buffer.data(), result.ptr);
    }
}

// Label values escape backslash, double quote and line feed; HELP text the same but the quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (const char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

// A sample line: name and suffix, the labels (and `le` or `quantile` after them), the value, and
// the timestamp in milliseconds unless it is 0.
template <typename Value>
void append_line(std::string& out, std::string_view name, std::string_view suffix,
                 std::string_view labels, std::string_view extra_name, const double* extra_value,
                 Value value, std::int64_t timestamp_ms = 0) {
    out += name;
    out += suffix;
    if (!labels.empty() || extra_value != nullptr) {
        out += '{';
        out += labels;
        if (extra_value != nullptr) {
            if (!labels.empty()) out += ',';
            out += extra_name;
            out += "=\"";
            append_value(out, *extra_value);
            out += '"';
        }
        out += '}';
    }
    out += ' ';
    append_value(out, value);
    if (timestamp_ms != 0) {
        out += ' ';
        out += std::to_string(timestamp_ms);
    }
    out += '\n';
}

// A histogram's or summary's first two lines, in prometheus-cpp's order.
void append_count_and_sum(std::string& out, std::string_view name, std::string_view labels,
                          std::uint64_t count, double sum, std::int64_t timestamp_ms = 0) {
    append_line(out, name, "_count", labels, {}, nullptr, count, timestamp_ms);
    append_line(out, name, "_sum", labels, {}, nullptr, sum, timestamp_ms);
}

void append_client_histogram(std::string& out, const MetricFamily& family, std::string_view labels,
                             const ClientMetric& metric) {
    const auto& histogram = metric.histogram;
    const auto stamp = metric.timestamp_ms;
    append_count_and_sum(out, family.name, labels, histogram.sample_count, histogram.sample_sum,
                         stamp);
    double last_bound = -kInfinity;
    for (const auto& bucket : histogram.bucket) {
        append_line(out, family.name, "_bucket", labels, "le", &bucket.upper_bound,
                    bucket.cumulative_count, stamp);
        last_bound = bucket.upper_bound;
    }
    if (last_bound != kInfinity) {
        append_line(out, family.name, "_bucket", labels, "le", &kInfinity, histogram.sample_count,
                    stamp);
    }
}

void append_client_summary(std::string& out, const MetricFamily& family, std::string_view labels,
                           const ClientMetric& metric) {
    const auto& summary = metric.summary;
    const auto stamp = metric.timestamp_ms;
    append_count_and_sum(out, family.name, labels, summary.sample_count, summary.sample_sum, stamp);
    for (const auto& quantile : summary.quantile) {
        append_line(out, family.name, "", labels, "quantile", &quantile.quantile, quantile.value,
                    stamp);
    }
}

std::string_view type_name(MetricType type) {
    switch (type) {
        case MetricType::Counter:
            return "counter";
        case MetricType::Gauge:
            return "gauge";
        case MetricType::Summary:
            return "summary";
        case MetricType::Histogram:
            return "histogram";
        case MetricType::Untyped:
            break;
    }
    return "untyped";
}

double single_value(MetricType type, const ClientMetric& metric) {
    switch (type) {
        case MetricType::Counter:
            return metric.counter.value;
        case MetricType::Gauge:
            return metric.gauge.value;
        default:
            return metric.untyped.value;
    }
}

}  // namespace

void append_family_header(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type) {
    if (!help.empty()) {
        out += "# HELP ";
        out += name;
        out += ' ';
        append_escaped(out, help, false);
        out += '\n';
    }
    out += "# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void append_label(std::string& labels, std::string_view name, std::string_view value) {
    if (!labels.empty()) labels += ',';
    labels += name;
    labels += "=\"";
    append_escaped(labels, value, true);
    labels += '"';
}

void append_sample(std::string& out, std::string_view name, std::string_view labels, double value) {
    append_line(out, name, "", labels, {}, nullptr, value);
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value) {
    append_line(out, name, "", labels, {}, nullptr, value);
}

void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      std::span<const double> bounds, std::span<const std::uint64_t> counts,
                      double sum) {
    std::uint64_t total = 0;
    for (const auto count : counts) total += count;
    append_count_and_sum(out, name, labels, total, sum);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size() && i < counts.size(); ++i) {
        cumulative += counts[i];
        append_line(out, name, "_bucket", labels, "le", &bounds[i], cumulative);
    }
    append_line(out, name, "_bucket", labels, "le", &kInfinity, total);
}

void append_text_format(const std::vector<MetricFamily>& families, std::string& out) {
    std::string labels;  // reused: one allocation per scrape rather than per series
    for (const auto& family : families) {
        append_family_header(out, family.name, family.help, type_name(family.type));
        for (const auto& metric : family.metric) {
            labels.clear();
            for (const auto& label : metric.label) append_label(labels, label.name, label.value);
            switch (family.type) {
                case MetricType::Histogram:
                    append_client_histogram(out, family, labels, metric);
                    break;
                case MetricType::Summary:
                    append_client_summary(out, family, labels, metric);
                    break;
                default:
                    append_line(out, family.name, "", labels, {}, nullptr,
                                single_value(family.type, metric), metric.timestamp_ms);
            }
        }
    }
}

}  // namespace mailcanary
