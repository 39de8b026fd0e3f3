#include "agent/exposition.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

namespace mailcanary {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void append_count(std::string& out, std::uint64_t count) {
    std::array<char, 24> buffer;
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), count);
    out.append(buffer.data(), result.ptr);
}

// As prometheus-cpp 1.0.1 writes numbers (printf's %.16g), so that no `le` label and no value
// changes its spelling: dashboards and alerts select buckets by that text.
void append_value(std::string& out, double value) {
    if (std::isnan(value)) {
        out += "NaN";
    } else if (std::isinf(value)) {
        out += value < 0 ? "-Inf" : "+Inf";
    } else {
        std::array<char, 32> buffer;  // at most "-1.234567890123456e-308": 23
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

// The start of a sample line up to its value: name, suffix and labels (plus `le` or `quantile`).
// The labels are escaped once per series, for every line of a histogram.
class SampleHead {
  public:
    SampleHead(std::string& out, const MetricFamily& family, const ClientMetric& metric,
               std::string& labels)
        : out_(out), name_(family.name), labels_(labels) {
        labels_.clear();
        for (const auto& label : metric.label) {
            if (!labels_.empty()) labels_ += ',';
            labels_ += label.name;
            labels_ += "=\"";
            append_escaped(labels_, label.value, true);
            labels_ += '"';
        }
    }

    void write(std::string_view suffix) {
        out_ += name_;
        out_ += suffix;
        if (!labels_.empty()) {
            out_ += '{';
            out_ += labels_;
            out_ += '}';
        }
        out_ += ' ';
    }

    void write(std::string_view suffix, std::string_view extra_name, double extra_value) {
        out_ += name_;
        out_ += suffix;
        out_ += '{';
        out_ += labels_;
        if (!labels_.empty()) out_ += ',';
        out_ += extra_name;
        out_ += "=\"";
        append_value(out_, extra_value);
        out_ += "\"} ";
    }

  private:
    std::string& out_;
    const std::string& name_;
    std::string& labels_;
};

void end_sample(std::string& out, const ClientMetric& metric) {
    if (metric.timestamp_ms != 0) {
        out += ' ';
        out += std::to_string(metric.timestamp_ms);
    }
    out += '\n';
}

void append_histogram(std::string& out, SampleHead& head, const ClientMetric& metric) {
    const auto& histogram = metric.histogram;
    head.write("_count");
    append_count(out, histogram.sample_count);
    end_sample(out, metric);
    head.write("_sum");
    append_value(out, histogram.sample_sum);
    end_sample(out, metric);
    double last_bound = -std::numeric_limits<double>::infinity();
    for (const auto& bucket : histogram.bucket) {
        head.write("_bucket", "le", bucket.upper_bound);
        append_count(out, bucket.cumulative_count);
        end_sample(out, metric);
        last_bound = bucket.upper_bound;
    }
    if (last_bound != std::numeric_limits<double>::infinity()) {
        head.write("_bucket", "le", std::numeric_limits<double>::infinity());
        append_count(out, histogram.sample_count);
        end_sample(out, metric);
    }
}

void append_summary(std::string& out, SampleHead& head, const ClientMetric& metric) {
    const auto& summary = metric.summary;
    head.write("_count");
    append_count(out, summary.sample_count);
    end_sample(out, metric);
    head.write("_sum");
    append_value(out, summary.sample_sum);
    end_sample(out, metric);
    for (const auto& quantile : summary.quantile) {
        head.write("", "quantile", quantile.quantile);
        append_value(out, quantile.value);
        end_sample(out, metric);
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

void append_text_format(const std::vector<MetricFamily>& families, std::string& out) {
    std::string labels;  // reused: one allocation per scrape rather than per series
    for (const auto& family : families) {
        if (!family.help.empty()) {
            out += "# HELP ";
            out += family.name;
            out += ' ';
            append_escaped(out, family.help, false);
            out += '\n';
        }
        out += "# TYPE ";
        out += family.name;
        out += ' ';
        out += type_name(family.type);
        out += '\n';
        for (const auto& metric : family.metric) {
            SampleHead head(out, family, metric, labels);
            switch (family.type) {
                case MetricType::Histogram:
                    append_histogram(out, head, metric);
                    break;
                case MetricType::Summary:
                    append_summary(out, head, metric);
                    break;
                default:
                    head.write("");
                    append_value(out, single_value(family.type, metric));
                    end_sample(out, metric);
            }
        }
    }
}

}  // namespace mailcanary
