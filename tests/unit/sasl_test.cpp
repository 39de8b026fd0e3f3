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

}  // namespace
}  // namespace mailcanary::sasl
