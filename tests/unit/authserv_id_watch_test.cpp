// A configured authserv_id that matches nothing is said: in each run's transcript, and in the
// log after a few deliveries in a row, naming the ids the messages carried. Microsoft 365's
// header (no authserv-id) is the case that drops every verdict today.
#include "probes/authserv_id_watch.hpp"

#include <gtest/gtest.h>

#include "common/log.hpp"

namespace mailcanary {
namespace {

const auto kMicrosoft = parse_header_block(
    "Authentication-Results: spf=pass (sender IP is 209.85.218.52) smtp.mailfrom=example.com;\r\n"
    " dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none\r\n"
    " header.from=example.com;compauth=pass reason=100\r\n");
const auto kYahoo = parse_header_block(
    "Authentication-Results: atlas-production.v2-mail-prod1-gq1.omega.yahoo.com;\r\n"
    " dkim=pass header.i=@example.com; spf=pass smtp.mailfrom=example.com;\r\n");
const auto kNoResults = parse_header_block("Received: by mx.example.test; 1 Dec 2026\r\n");

// What one delivery adds to the log and to its run's transcript.
struct Said {
    std::string log;
    std::string transcript;
};

Said deliver(AuthservIdWatch& watch, const std::vector<HeaderField>& fields,
             std::string_view trusted) {
    Transcript transcript;
    testing::internal::CaptureStderr();
    watch.observe(fields, trusted, "m365-roundtrip", transcript);
    return {testing::internal::GetCapturedStderr(), transcript.to_text()};
}

TEST(AuthservIdWatch, WarnsOnceAfterSeveralMissesInARowNamingWhatWasSeen) {
    log::configure(log::Level::info, log::Format::logfmt);
    AuthservIdWatch watch;
    for (unsigned i = 1; i < AuthservIdWatch::kMissesBeforeWarning; ++i) {
        const auto said = deliver(watch, kMicrosoft, "outlook.com");
        EXPECT_EQ(said.log, "") << "delivery " << i;
        EXPECT_NE(said.transcript.find("no Authentication-Results from authserv_id outlook.com"),
                  std::string::npos)
            << said.transcript;
    }
    const auto warned = deliver(watch, kMicrosoft, "outlook.com");
    EXPECT_NE(warned.log.find("level=warn"), std::string::npos) << warned.log;
    EXPECT_NE(warned.log.find("authserv_id=outlook.com"), std::string::npos) << warned.log;
    EXPECT_NE(warned.log.find("target=m365-roundtrip"), std::string::npos) << warned.log;
    EXPECT_NE(warned.log.find("(none, as Microsoft writes them)"), std::string::npos) << warned.log;
    // Once is enough while nothing changes.
    EXPECT_EQ(deliver(watch, kMicrosoft, "outlook.com").log, "");
}

TEST(AuthservIdWatch, AMatchEndsTheRunAndMessagesWithoutResultsDoNotCount) {
    AuthservIdWatch watch;
    for (unsigned i = 1; i < AuthservIdWatch::kMissesBeforeWarning; ++i) {
        deliver(watch, kYahoo, "*.mail.yahoo.com");
    }
    // No Authentication-Results at all says nothing about the id.
    const auto silent = deliver(watch, kNoResults, "*.mail.yahoo.com");
    EXPECT_EQ(silent.log, "");
    EXPECT_EQ(silent.transcript, "");
    // A match starts the count again.
    const auto matched = deliver(watch, kYahoo, "*.yahoo.com");
    EXPECT_EQ(matched.log, "");
    EXPECT_EQ(matched.transcript, "");
    for (unsigned i = 1; i < AuthservIdWatch::kMissesBeforeWarning; ++i) {
        EXPECT_EQ(deliver(watch, kYahoo, "*.mail.yahoo.com").log, "");
    }
    const auto warned = deliver(watch, kYahoo, "*.mail.yahoo.com");
    EXPECT_NE(warned.log.find("atlas-production.v2-mail-prod1-gq1.omega.yahoo.com"),
              std::string::npos)
        << warned.log;
}

}  // namespace
}  // namespace mailcanary
