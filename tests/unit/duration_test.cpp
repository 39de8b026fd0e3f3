#include "common/duration.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;

constexpr Duration kDay = 24h;

TEST(ParseDuration, AcceptsEachUnit) {
    EXPECT_EQ(parse_duration("250ms"), Duration{250ms});
    EXPECT_EQ(parse_duration("5s"), Duration{5s});
    EXPECT_EQ(parse_duration("2m"), Duration{2min});
    EXPECT_EQ(parse_duration("1h"), Duration{1h});
    EXPECT_EQ(parse_duration("7d"), Duration{7 * kDay});
}

TEST(ParseDuration, AcceptsGroupsLargestUnitFirst) {
    EXPECT_EQ(parse_duration("1m30s"), Duration{90s});
    EXPECT_EQ(parse_duration("1h0m5s"), Duration{1h + 5s});
    EXPECT_EQ(parse_duration("1d2h3m4s5ms"), Duration{kDay + 2h + 3min + 4s + 5ms});
    EXPECT_EQ(parse_duration("1s500ms"), Duration{1500ms});
}

TEST(ParseDuration, AcceptsZeroAndLeadingZeros) {
    EXPECT_EQ(parse_duration("0s"), Duration::zero());
    EXPECT_EQ(parse_duration("0ms"), Duration::zero());
    EXPECT_EQ(parse_duration("007s"), Duration{7s});
    EXPECT_EQ(parse_duration("90s"), Duration{90s});  // a group may exceed the next unit up
}

TEST(ParseDuration, AcceptsTheLargestRepresentableValue) {
    // int64 nanoseconds hold 106751 days and a bit; one more day overflows.
    EXPECT_EQ(parse_duration("106751d"), Duration{106751 * kDay});
    EXPECT_EQ(parse_duration("106752d"), std::nullopt);
}

TEST(ParseDuration, RejectsMalformedText) {
    for (std::string_view text :
         {"",    "5",  "s",  "ms",   "-5s", "+5s", " 5s", "5s ", "5 s", "1m 30s", "1.5s",
          ".5s", "5x", "5S", "5sec", "5us", "5ns", "5w",  "1y",  "5s5", "1_000s", "0x10s"}) {
        EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
    }
}

TEST(ParseDuration, RejectsUnitsOutOfOrderOrRepeated) {
    for (std::string_view text : {"30s1m", "1ms1s", "1s1s", "1m1m", "5ms1d", "1h1d", "1m30s1m"}) {
        EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
    }
}

TEST(ParseDuration, RejectsOverflow) {
    for (std::string_view text : {"9223372036854775808ms", "99999999999999999999s",
                                  "9223372036855ms", "106751d23h47m16s855ms"}) {
        EXPECT_EQ(parse_duration(text), std::nullopt) << '"' << text << '"';
    }
    // Every group fits, only the sum does not.
    EXPECT_EQ(parse_duration("106751d24h"), std::nullopt);
}

TEST(FormatDuration, GivesTheShortestForm) {
    EXPECT_EQ(format_duration(Duration::zero()), "0s");
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(90s), "1m30s");
    EXPECT_EQ(format_duration(1h), "1h");
    EXPECT_EQ(format_duration(60min), "1h");
    EXPECT_EQ(format_duration(kDay + 1ms), "1d1ms");
    EXPECT_EQ(format_duration(1h + 1s), "1h1s");
}

TEST(FormatDuration, DropsSubMillisecondRemainder) {
    EXPECT_EQ(format_duration(1500us), "1ms");
    EXPECT_EQ(format_duration(999us), "0s");
}

TEST(FormatDuration, MarksNegativeValues) {
    EXPECT_EQ(format_duration(-90s), "-1m30s");
    EXPECT_EQ(format_duration(Duration::min()), "-106751d23h47m16s854ms");
}

TEST(FormatDuration, RoundTripsThroughParse) {
    const std::pair<std::string_view, std::string_view> written_and_canonical[] = {
        {"1m30s", "1m30s"}, {"90s", "1m30s"},       {"0ms", "0s"},
        {"1000ms", "1s"},   {"24h", "1d"},          {"1d2h3m4s5ms", "1d2h3m4s5ms"},
        {"007s", "7s"},     {"106751d", "106751d"},
    };
    for (const auto& [written, canonical] : written_and_canonical) {
        const std::optional<Duration> parsed = parse_duration(written);
        ASSERT_TRUE(parsed) << written;
        EXPECT_EQ(format_duration(*parsed), canonical) << written;
        EXPECT_EQ(parse_duration(format_duration(*parsed)), parsed) << written;
    }
}

}  // namespace
}  // namespace mailcanary
