#include "protocols/message.hpp"
#include "protocols/token.hpp"

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;

const std::chrono::system_clock::time_point kDeadline{1'800'000'000s};

TEST(Token, VerifiesOnlyWithTheSameSecretAndIsUniquePerRun) {
    const std::string token = make_token("installation secret", kDeadline);
    EXPECT_TRUE(token.starts_with("mc2.1800000000.")) << token;
    EXPECT_EQ(token.size(), 4u + 10 + 1 + 32 + 1 + 32);
    const auto verified = verify_token(token, "installation secret");
    ASSERT_TRUE(verified);
    EXPECT_EQ(verified->deadline, kDeadline);
    EXPECT_FALSE(verify_token(token, "another installation"));
    EXPECT_NE(make_token("installation secret", kDeadline), token);
    std::string forged = token;
    forged[20] = forged[20] == 'a' ? 'b' : 'a';  // another run id, same mac
    EXPECT_FALSE(verify_token(forged, "installation secret"));
    EXPECT_FALSE(verify_token(token + "0", "installation secret")) << "a byte after the mac";
    EXPECT_FALSE(verify_token(token.substr(0, token.size() - 1), "installation secret"));
    EXPECT_FALSE(verify_token("mc2.short", "installation secret"));
    EXPECT_FALSE(verify_token("", "installation secret"));
    EXPECT_EQ(token_run_id(token), token.substr(15, 32));
}

TEST(Token, TheDeadlineIsSignedAndRoundedUp) {
    const std::string token = make_token("s", kDeadline + 1ms);
    EXPECT_TRUE(token.starts_with("mc2.1800000001.")) << token;
    // A later deadline written over a signed one is a forgery, not an extension.
    std::string extended = token;
    extended.replace(4, 10, "1900000000");
    EXPECT_FALSE(verify_token(extended, "s"));
    for (const char* malformed :
         {"mc2..0123456789abcdef0123456789abcdef.00000000000000000000000000000000",
          "mc2.12a.0123456789abcdef0123456789abcdef.00000000000000000000000000000000",
          "mc2.1234567890123.0123456789abcdef0123456789abcdef.00000000000000000000000000000000",
          "mc2.1.0123456789abcdef0123456789abcdef.00000000000000000000000000000000.x",
          "mc3.1.0123456789abcdef0123456789abcdef.00000000000000000000000000000000"}) {
        EXPECT_FALSE(verify_token(malformed, "s")) << malformed;
    }
}

// Tokens written by earlier versions (and by other implementations of the format) stay
// recognised: vectors computed with Python's hmac, independently of this code.
TEST(Token, KnownVectorsOfBothVersionsVerify) {
    const std::string legacy =
        "mc1.0123456789abcdef0123456789abcdef.eba56d88cf5ded551fae7b74cc45a02c";
    const auto old_token = verify_token(legacy, "installation secret");
    ASSERT_TRUE(old_token);
    EXPECT_EQ(old_token->deadline, std::nullopt) << "mc1 says nothing of its deadline";
    EXPECT_EQ(token_run_id(legacy), "0123456789abcdef0123456789abcdef");

    const std::string current =
        "mc2.1800000000.0123456789abcdef0123456789abcdef.6558ce161a15099313d70fcd4d89af9b";
    const auto new_token = verify_token(current, "installation secret");
    ASSERT_TRUE(new_token);
    EXPECT_EQ(new_token->deadline, kDeadline);
    EXPECT_EQ(token_run_id(current), "0123456789abcdef0123456789abcdef");
    EXPECT_FALSE(verify_token(current, "another installation"));
}

TEST(DotStuff, DoublesLeadingDotsOnly) {
    EXPECT_EQ(dot_stuff(".hidden\r\nnot.this\r\n.\r\n..two\r\n"),
              "..hidden\r\nnot.this\r\n..\r\n...two\r\n");
}

TEST(Message, IsWellFormedRfc5322) {
    const MessageSpec spec{.from = "canary@example.org",
                           .to = {"a@example.test", "b@example.test"},
                           .subject = "mailcanary probe",
                           .headers = {{"X-Team", "mail-ops"}},
                           .token = make_token("s", kDeadline),
                           .message_id_domain = "probe.example.org"};
    const auto message =
        compose_message(spec, std::chrono::system_clock::time_point(1'796'000'000s));
    EXPECT_TRUE(message.starts_with("Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n")) << message;
    for (const char* header :
         {"\r\nMessage-ID: <", "\r\nFrom: <canary@example.org>\r\n",
          "\r\nTo: <a@example.test>, <b@example.test>\r\n", "\r\nSubject: mailcanary probe\r\n",
          "\r\nMIME-Version: 1.0\r\n", "\r\nX-Team: mail-ops\r\n"}) {
        EXPECT_NE(message.find(header), std::string::npos) << header;
    }
    EXPECT_NE(message.find("\r\nX-Mailcanary-Token: " + spec.token + "\r\n"), std::string::npos);
    EXPECT_NE(message.find("@probe.example.org>\r\n"), std::string::npos);
    EXPECT_TRUE(message.ends_with("\r\n.\r\n"));
    // Every line ends in CRLF and none is longer than RFC 5322's 998 octets.
    std::size_t start = 0;
    while (start < message.size()) {
        const auto end = message.find("\r\n", start);
        ASSERT_NE(end, std::string::npos);
        EXPECT_LE(end - start, 998u);
        EXPECT_EQ(message.substr(start, end - start).find('\n'), std::string::npos);
        start = end + 2;
    }
}

TEST(Message, HeaderValuesCannotInjectLines) {
    const MessageSpec spec{.from = "a@b",
                           .to = {"c@d"},
                           .subject = "hi\r\nBcc: victim@example.com",
                           .headers = {},
                           .token = "t",
                           .message_id_domain = "x"};
    const auto message = compose_message(spec, std::chrono::system_clock::now());
    EXPECT_EQ(message.find("\r\nBcc:"), std::string::npos);
}

TEST(Message, TheBodySaysWhatBecomesOfItAndOnlyThat) {
    MessageSpec spec{.from = "a@b",
                     .to = {"c@d"},
                     .subject = "s",
                     .headers = {},
                     .token = "t",
                     .message_id_domain = "x"};
    const auto body = [&](AfterDelivery after_delivery) {
        spec.after_delivery = after_delivery;
        const auto message = compose_message(spec, std::chrono::system_clock::now());
        return message.substr(message.find("\r\n\r\n"));
    };
    // The accept probe deletes nothing: its message must not claim otherwise.
    EXPECT_EQ(body(AfterDelivery::kept).find("deleted automatically"), std::string::npos);
    EXPECT_NE(body(AfterDelivery::kept).find("does not delete it"), std::string::npos);
    EXPECT_NE(body(AfterDelivery::removed).find("removes it from this folder"), std::string::npos);
    EXPECT_NE(body(AfterDelivery::trashed).find("moves it to the trash"), std::string::npos);
    for (const auto after_delivery :
         {AfterDelivery::kept, AfterDelivery::removed, AfterDelivery::trashed}) {
        EXPECT_TRUE(body(after_delivery).ends_with("\r\n.\r\n"));
    }
}

}  // namespace
}  // namespace mailcanary
