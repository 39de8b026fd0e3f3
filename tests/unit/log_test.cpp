#include "common/log.hpp"

#include <gtest/gtest.h>

namespace mailcanary::log {
namespace {

class LogTest : public testing::Test {
  protected:
    ~LogTest() override { configure(Level::info, Format::logfmt); }

    static std::string capture(Level minimum, Format format, void (*emit)()) {
        configure(minimum, format);
        testing::internal::CaptureStderr();
        emit();
        return testing::internal::GetCapturedStderr();
    }
};

TEST_F(LogTest, LogfmtQuotesOnlyWhatNeedsIt) {
    const auto line = capture(Level::info, Format::logfmt, [] {
        info("probe failed", {{"target", "mx1"}, {"detail", "550 \"no\" = bye"}, {"empty", ""}});
    });
    EXPECT_TRUE(line.starts_with("ts=")) << line;
    EXPECT_NE(line.find(" level=info msg=\"probe failed\" target=mx1 detail=\"550 \\\"no\\\" = "
                        "bye\" empty=\"\"\n"),
              std::string::npos)
        << line;
}

TEST_F(LogTest, JsonIsOneObjectPerLineWithEscapes) {
    const auto line = capture(Level::info, Format::json, [] {
        warn("odd reply", {{"text", "line1\nline2\t\x01"}});
    });
    EXPECT_TRUE(line.starts_with("{\"ts\":\"")) << line;
    EXPECT_NE(line.find(R"("level":"warn","msg":"odd reply","text":"line1\nline2\t\u0001"})"),
              std::string::npos)
        << line;
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "exactly one line";
}

TEST_F(LogTest, LevelsBelowTheMinimumAreDropped) {
    EXPECT_EQ(capture(Level::warn, Format::logfmt, [] { info("hidden"); }), "");
    EXPECT_EQ(capture(Level::info, Format::logfmt, [] { debug("hidden"); }), "");
    EXPECT_NE(capture(Level::debug, Format::logfmt, [] { debug("shown"); }).find("msg=shown"),
              std::string::npos);
}

TEST_F(LogTest, ParsesLevelsAndFormats) {
    EXPECT_EQ(parse_level("debug"), Level::debug);
    EXPECT_EQ(parse_level("error"), Level::error);
    EXPECT_FALSE(parse_level("verbose"));
    EXPECT_EQ(parse_format("json"), Format::json);
    EXPECT_FALSE(parse_format("JSON"));
}

}  // namespace
}  // namespace mailcanary::log
