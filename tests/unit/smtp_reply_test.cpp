#include "protocols/smtp_reply.hpp"

#include <gtest/gtest.h>

namespace mailcanary::smtp {
namespace {

using Status = ReplyParser::Status;

TEST(SmtpReplyParser, SingleLineReplyWithEnhancedStatus) {
    ReplyParser parser;
    parser.feed("250 2.1.0 Ok\r\n");
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().code, 250);
    EXPECT_EQ(parser.reply().lines, std::vector<std::string>{"2.1.0 Ok"});
    ASSERT_TRUE(parser.reply().enhanced);
    EXPECT_EQ(*parser.reply().enhanced, (EnhancedStatus{2, 1, 0}));
    EXPECT_EQ(parser.reply().enhanced->to_string(), "2.1.0");
    EXPECT_EQ(parser.next(), Status::need_more);
}

TEST(SmtpReplyParser, MultiLineReplyArrivingInPieces) {
    ReplyParser parser;
    parser.feed("250-mail.example.test\r\n250-PIPE");
    EXPECT_EQ(parser.next(), Status::need_more);
    parser.feed("LINING\r\n250-SIZE 10240000\r");
    EXPECT_EQ(parser.next(), Status::need_more);
    parser.feed("\n250 STARTTLS\r\n");
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().lines, (std::vector<std::string>{"mail.example.test", "PIPELINING",
                                                              "SIZE 10240000", "STARTTLS"}));
    EXPECT_FALSE(parser.reply().enhanced);
    EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SmtpReplyParser, GreetingOfSeveral220Lines) {
    ReplyParser parser;
    parser.feed("220-mx.example.test ESMTP\r\n220-No UCE\r\n220 ready\r\n");
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().code, 220);
    EXPECT_EQ(parser.reply().lines.size(), 3u);
    EXPECT_EQ(parser.reply().summary(), "220 mx.example.test ESMTP");
}

TEST(SmtpReplyParser, BareCodeAndBareLineFeedAreAccepted) {
    ReplyParser parser;
    parser.feed("221\n");
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().code, 221);
    EXPECT_EQ(parser.reply().lines, std::vector<std::string>{""});
}

TEST(SmtpReplyParser, TwoRepliesInOneReadAreYieldedOneByOne) {
    ReplyParser parser;
    parser.feed("250 ok\r\n354 go on\r\n");
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().code, 250);
    EXPECT_EQ(parser.buffered(), 11u);
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().code, 354);
    EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SmtpReplyParser, EnhancedStatusMustMatchTheReplyClass) {
    EXPECT_FALSE(parse_enhanced_status("2.1.0 Ok", 5));
    EXPECT_FALSE(parse_enhanced_status("5.7", 5));
    EXPECT_FALSE(parse_enhanced_status("5.7.1x", 5));
    EXPECT_FALSE(parse_enhanced_status("5.1234.1 x", 5));
    EXPECT_EQ(parse_enhanced_status("5.7.1", 5), (EnhancedStatus{5, 7, 1}));
    EXPECT_EQ(parse_enhanced_status("4.7.0 try later", 4), (EnhancedStatus{4, 7, 0}));
}

struct MalformedCase {
    const char* input;
    const char* error_part;
};

void PrintTo(const MalformedCase& malformed, std::ostream* out) { *out << malformed.error_part; }

class SmtpReplyParserMalformed : public testing::TestWithParam<MalformedCase> {};

TEST_P(SmtpReplyParserMalformed, IsAnError) {
    ReplyParser parser;
    parser.feed(GetParam().input);
    ASSERT_EQ(parser.next(), Status::error);
    EXPECT_NE(parser.error().find(GetParam().error_part), std::string::npos) << parser.error();
    // An error is final: more bytes do not revive the parser.
    parser.feed("250 ok\r\n");
    EXPECT_EQ(parser.next(), Status::error);
}

INSTANTIATE_TEST_SUITE_P(Cases, SmtpReplyParserMalformed,
                         testing::Values(MalformedCase{"HTTP/1.1 400 Bad Request\r\n", "malformed"},
                                         MalformedCase{"25 ok\r\n", "malformed"},
                                         MalformedCase{"250_ok\r\n", "malformed"},
                                         MalformedCase{"150 preliminary\r\n", "malformed"},
                                         MalformedCase{"\r\n", "malformed"},
                                         MalformedCase{"250-a\r\n251 b\r\n",
                                                       "reply code changed"}));

TEST(SmtpReplyParser, EndlessLineIsAnErrorWithBoundedMemory) {
    ReplyParser parser(ReplyParser::Limits{.max_line_length = 100, .max_lines = 10});
    parser.feed("220 ");
    for (int i = 0; i < 20; ++i) {
        parser.feed(std::string(10, 'x'));
        if (parser.next() == Status::error) break;
    }
    EXPECT_EQ(parser.next(), Status::error);
    EXPECT_NE(parser.error().find("longer than 100"), std::string::npos);
    EXPECT_LE(parser.buffered(), 110u);
}

TEST(SmtpReplyParser, EndlessMultiLineReplyIsAnError) {
    ReplyParser parser(ReplyParser::Limits{.max_line_length = 100, .max_lines = 10});
    Status status = Status::need_more;
    for (int i = 0; i < 20 && status == Status::need_more; ++i) {
        parser.feed("250-more\r\n");
        status = parser.next();
    }
    EXPECT_EQ(status, Status::error);
    EXPECT_NE(parser.error().find("longer than 10 lines"), std::string::npos);
}

TEST(SmtpReplyParser, DrippedOneByteAtATime) {
    ReplyParser parser;
    const std::string reply = "250-first\r\n250 second\r\n";
    for (std::size_t i = 0; i + 1 < reply.size(); ++i) {
        parser.feed(reply.substr(i, 1));
        ASSERT_EQ(parser.next(), Status::need_more) << i;
    }
    parser.feed(reply.substr(reply.size() - 1));
    ASSERT_EQ(parser.next(), Status::reply);
    EXPECT_EQ(parser.reply().lines, (std::vector<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace mailcanary::smtp
