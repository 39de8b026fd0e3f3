// Durations as written in the configuration: "250ms", "5s", "1m30s", the Prometheus/Go syntax.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

using Duration = std::chrono::nanoseconds;

// One or more "<digits><unit>" groups with units d, h, m, s, ms, each unit at most once and in
// that order (largest first). nullopt for anything else: empty text, signs, spaces, decimals,
// unknown, repeated or out-of-order units, or a total too large for Duration.
std::optional<Duration> parse_duration(std::string_view text);

// The shortest text parse_duration reads back as the same value: "1m30s", "250ms", "0s".
// Only whole milliseconds are representable: a sub-millisecond remainder is dropped.
// Negative values get a leading '-' (which parse_duration rejects).
std::string format_duration(Duration duration);

// For people reading a run: "12.3 ms".
std::string format_milliseconds(std::chrono::nanoseconds duration);

// RFC 3339 in UTC with milliseconds, as logs and JSON give times: "2026-12-03T22:41:21.123Z".
std::string utc_timestamp(std::chrono::system_clock::time_point when);

}  // namespace mailcanary
