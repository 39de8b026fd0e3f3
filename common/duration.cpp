#include "common/duration.hpp"

#include <cstdio>
#include <ctime>

#include <array>
#include <cstdint>
#include <limits>

namespace mailcanary {
namespace {

struct DurationUnit {
    std::string_view suffix;
    int64_t nanoseconds;
};

// Largest first: the order the groups must appear in, and the order format_duration emits.
constexpr std::array<DurationUnit, 5> kUnits{{
    {"d", 86'400'000'000'000},
    {"h", 3'600'000'000'000},
    {"m", 60'000'000'000},
    {"s", 1'000'000'000},
    {"ms", 1'000'000},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Index into kUnits, or kUnits.size() when the suffix is not a unit.
size_t unit_index(std::string_view suffix) {
    size_t index = 0;
    while (index < kUnits.size() && kUnits[index].suffix != suffix) ++index;
    return index;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    if (text.empty()) return std::nullopt;
    int64_t total = 0;
    size_t next_allowed_unit = 0;  // units must strictly descend, so each appears at most once
    size_t pos = 0;
    while (pos < text.size()) {
        if (!is_digit(text[pos])) return std::nullopt;
        int64_t count = 0;
        for (; pos < text.size() && is_digit(text[pos]); ++pos) {
            const int digit = text[pos] - '0';
            if (count > (kMax - digit) / 10) return std::nullopt;
            count = count * 10 + digit;
        }
        const size_t suffix_start = pos;
        while (pos < text.size() && text[pos] >= 'a' && text[pos] <= 'z') ++pos;
        const size_t unit = unit_index(text.substr(suffix_start, pos - suffix_start));
        if (unit >= kUnits.size() || unit < next_allowed_unit) return std::nullopt;
        next_allowed_unit = unit + 1;
        const int64_t scale = kUnits[unit].nanoseconds;
        if (count > (kMax - total) / scale) return std::nullopt;
        total += count * scale;
    }
    return Duration{total};
}

std::string format_duration(Duration duration) {
    const int64_t count = duration.count();
    // Unsigned magnitude: negating the most negative int64 would overflow.
    uint64_t remaining =
        count < 0 ? 0 - static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
    std::string text = count < 0 ? "-" : "";
    for (const DurationUnit& unit : kUnits) {
        const auto scale = static_cast<uint64_t>(unit.nanoseconds);
        if (remaining < scale) continue;
        text += std::to_string(remaining / scale);
        text += unit.suffix;
        remaining %= scale;
    }
    // Nothing emitted: zero, or less than the smallest unit.
    return text.empty() || text == "-" ? "0s" : text;
}

std::string format_milliseconds(std::chrono::nanoseconds duration) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f ms",
                  std::chrono::duration<double, std::milli>(duration).count());
    return text;
}

std::string utc_timestamp(std::chrono::system_clock::time_point when) {
    const auto time = std::chrono::system_clock::to_time_t(when);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() %
        1000;
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[96];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));
    return text;
}

}  // namespace mailcanary
