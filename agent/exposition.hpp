// The Prometheus text exposition format 0.0.4, written straight into a string. prometheus-cpp's
// TextSerializer goes through std::ostream for every name, label and number; on a /metrics of a
// million series that was most of a multi-second scrape (docs/benchmarks.md).
//
// Output is what prometheus-cpp 1.0.1's TextSerializer writes (the same order, numbers spelled as
// its %.16g, so no `le` label changes), except that NaN is "NaN" and that HELP text and label
// values are escaped as the format requires (backslash, line feed, and in label values the quote).
#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary {

// Appends the families to `out`.
void append_text_format(const std::vector<prometheus::MetricFamily>& families, std::string& out);

// The pieces, for series kept outside prometheus-cpp. `labels` is a label list as
// append_label makes it (`a="1",b="2"`), possibly empty.
void append_family_header(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type);
void append_label(std::string& labels, std::string_view name, std::string_view value);
void append_sample(std::string& out, std::string_view name, std::string_view labels, double value);
void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value);
// `counts` has one count per bound and then the +Inf bucket's, each not cumulative.
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      std::span<const double> bounds, std::span<const std::uint64_t> counts,
                      double sum);

}  // namespace mailcanary
