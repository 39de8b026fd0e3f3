// The Prometheus text exposition format 0.0.4, written straight into a string. prometheus-cpp's
// TextSerializer goes through std::ostream for every name, label and number; on a /metrics of a
// million series that was most of a multi-second scrape (docs/benchmarks.md).
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace mailcanary {

// Appends the families to `out`, as prometheus-cpp 1.0.1's TextSerializer writes them (the same
// order and number spelling) except that NaN is "NaN" and that HELP text and label values are
// escaped as the format requires (backslash, line feed, and in label values the double quote).
void append_text_format(const std::vector<prometheus::MetricFamily>& families, std::string& out);

}  // namespace mailcanary
