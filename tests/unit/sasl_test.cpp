#include "protocols/sasl.hpp"

#include <gtest/gtest.h>

namespace mailcanary::sasl {
namespace {

TEST(Sasl, PlainIsRfc4616sExample) {
    EXPECT_EQ(plain_response("tim", "tanstaaftanstaaf"), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
}

TEST(Sasl, CramMd5IsRfc2195sExample) {
    const auto challenge =
        base64_decode("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    ASSERT_EQ(challenge, "<1896.697170952@postoffice.reston.mci.net>");
    EXPECT_EQ(cram_md5_response("tim", "tanstaaftanstaaf", *challenge),
              "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
}

TEST(Sasl, Xoauth2IsGooglesFormat) {
    EXPECT_EQ(
        xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSF"
        "Jo"
        "ZG1semRHRXVZMjl0Q2cBAQ==");
}

TEST(Sasl, OauthbearerIsRfc7628sExample) {
    EXPECT_EQ(
        oauthbearer_response("user@example.com", "server.example.com", 143,
                             "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
        "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
    // RFC 5801: a comma or '=' in the authorisation identity is escaped.
    EXPECT_EQ(base64_decode(oauthbearer_response("a,b=c", "h", 1, "t"))->substr(0, 14),
              "n,a=a=2Cb=3Dc,");
}

TEST(Sasl, Base64RoundTripsAndRejectsGarbage) {
    for (const std::string& text :
         std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\x01\xff", 3)}) {
        EXPECT_EQ(base64_decode(base64_encode(text)), text);
    }
    EXPECT_FALSE(base64_decode("abc"));
    EXPECT_FALSE(base64_decode("ab!="));
}

TEST(Sasl, OfferedMechanismsFromEhloCapabilities) {
    const std::vector<std::string> capabilities{"PIPELINING", "auth plain Login", "AUTH=CRAM-MD5",
                                                "SIZE 100"};
    EXPECT_EQ(offered_mechanisms(capabilities),
              (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
}

TEST(Sasl, ChoosesTheStrongestTheCredentialAllows) {
    const std::vector<std::string> all{"LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"};
    EXPECT_EQ(choose(all, false), Mechanism::cram_md5);
    EXPECT_EQ(choose(all, true), Mechanism::oauthbearer);
    EXPECT_EQ(choose(std::vector<std::string>{"LOGIN", "PLAIN"}, false), Mechanism::plain);
    EXPECT_EQ(choose(std::vector<std::string>{"LOGIN", "XOAUTH2"}, true), Mechanism::xoauth2);
    EXPECT_FALSE(choose(std::vector<std::string>{"XOAUTH2"}, false));
    EXPECT_FALSE(choose(std::vector<std::string>{"PLAIN", "LOGIN"}, true));
}

TEST(Sasl, AnExplicitMechanismIsTakenOnlyWhenOffered) {
    const std::vector<std::string> offered{"PLAIN", "CRAM-MD5"};
    EXPECT_EQ(choose(offered, false, Mechanism::plain), Mechanism::plain);
    EXPECT_FALSE(choose(offered, false, Mechanism::login));
    EXPECT_EQ(describe_no_choice(offered, false, Mechanism::login),
              "server offers AUTH PLAIN CRAM-MD5, not LOGIN");
    EXPECT_EQ(describe_no_choice(offered, true, std::nullopt),
              "server offers AUTH PLAIN CRAM-MD5, not a token mechanism");
    EXPECT_EQ(describe_no_choice({}, false, std::nullopt), "server offers no SASL mechanism");
}

TEST(Sasl, OfferedMechanismsFromImapCapabilities) {
    const std::vector<std::string> capabilities{"IMAP4rev1", "SASL-IR", "AUTH=PLAIN",
                                                "auth=xoauth2", "IDLE"};
    EXPECT_EQ(offered_mechanisms(capabilities), (std::vector<std::string>{"PLAIN", "XOAUTH2"}));
}

const Credential kCredential{"tim", "tanstaaftanstaaf", "server.example.com", 143};

TEST(SaslExchange, InitialResponseGoesWithTheCommandOrAnswersTheFirstChallenge) {
    Exchange carried(Mechanism::plain, kCredential);
    EXPECT_EQ(carried.initial_response(true), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    EXPECT_NE(carried.answer("").error, "") << "PLAIN has nothing more to say";

    // Without SASL-IR the server asks for it with an empty challenge (RFC 4422 5).
    Exchange asked(Mechanism::plain, kCredential);
    EXPECT_EQ(asked.initial_response(false), std::nullopt);
    const auto answer = asked.answer("");
    EXPECT_EQ(answer.response, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    EXPECT_TRUE(answer.secret);
    EXPECT_EQ(answer.error, "");
}

TEST(SaslExchange, LoginAnswersUserThenPassword) {
    Exchange login(Mechanism::login, kCredential);
    EXPECT_EQ(login.initial_response(true), std::nullopt) << "the server speaks first";
    EXPECT_EQ(login.answer("VXNlcm5hbWU6").response, base64_encode("tim"));
    const auto password = login.answer("UGFzc3dvcmQ6");
    EXPECT_EQ(password.response, base64_encode("tanstaaftanstaaf"));
    EXPECT_TRUE(password.secret);
    EXPECT_EQ(login.answer("").error, "unexpected SASL challenge");
}

TEST(SaslExchange, CramMd5AnswersItsChallengeAndRefusesGarbage) {
    Exchange cram(Mechanism::cram_md5, kCredential);
    EXPECT_EQ(cram.initial_response(true), std::nullopt);
    EXPECT_EQ(cram.answer("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+").response,
              "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");

    Exchange garbage(Mechanism::cram_md5, kCredential);
    EXPECT_EQ(garbage.answer("!!!").error, "CRAM-MD5 challenge is not base64");
}

TEST(SaslExchange, OAuthErrorChallengeIsAnsweredToGetTheFinalFailure) {
    const std::string error = R"({"status":"401","schemes":"bearer"})";
    Exchange xoauth2(Mechanism::xoauth2, kCredential);
    EXPECT_EQ(xoauth2.initial_response(true), xoauth2_response("tim", "tanstaaftanstaaf"));
    const auto empty = xoauth2.answer(base64_encode(error));
    EXPECT_EQ(empty.response, "");
    EXPECT_FALSE(empty.secret);
    EXPECT_EQ(empty.server_error, error);
    EXPECT_NE(xoauth2.answer("").error, "");

    Exchange oauthbearer(Mechanism::oauthbearer, kCredential);
    EXPECT_EQ(oauthbearer.initial_response(true),
              oauthbearer_response("tim", "server.example.com", 143, "tanstaaftanstaaf"));
    const auto control_a = oauthbearer.answer("not base64 at all");
    EXPECT_EQ(control_a.response, base64_encode("\x01"));  // RFC 7628 3.2.3
    EXPECT_EQ(control_a.server_error, "not base64 at all");
}

}  // namespace
}  // namespace mailcanary::sasl
