// Reading the Prometheus text exposition in tests.
#pragma once

#include <string>

namespace mailcanary::test {

// The value of one series, written exactly as exposed (labels in alphabetical order), or -1
// when the series is absent.
double value_of(const std::string& exposition, const std::string& series);

}  // namespace mailcanary::test
