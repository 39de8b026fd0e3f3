#include "protocols/mail_headers.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

system_clock::time_point utc(int year, unsigned month, unsigned day, int hour, int minute,
                             int second) {
    return std::chrono::sys_days(std::chrono::year_month_day{
               std::chrono::year{year}, std::chrono::month{month}, std::chrono::day{day}}) +
           std::chrono::hours(hour) + std::chrono::minutes(minute) + std::chrono::seconds(second);
}

AuthVerdicts verdicts(std::optional<std::string> spf, std::optional<std::string> dkim,
                      std::optional<std::string> dmarc) {
    return AuthVerdicts{.spf = std::move(spf), .dkim = std::move(dkim), .dmarc = std::move(dmarc)};
}

// parse_authentication_results' verdicts, or a marker that it gave up on the value.
AuthVerdicts verdicts_of(std::string_view value) {
    const auto parsed = parse_authentication_results(value);
    if (!parsed) return verdicts("(unusable)", "(unusable)", "(unusable)");
    return parsed->verdicts;
}

// ---------------------------------------------------------------------------------------------
// Header blocks

TEST(HeaderBlock, UnfoldsFieldsAndKeepsTheirOrder) {
    const auto fields = parse_header_block(
        "Authentication-Results: mx.example.test;\r\n"
        "\tspf=pass smtp.mailfrom=a@example.test\r\n"
        "Received: from a\r\n"
        "  by b; Sun, 29 Nov 2026 09:00:01 +0000\r\n"
        "received: from c by d; Sun, 29 Nov 2026 09:00:00 +0000\r\n"
        "X-Mailcanary-Token: mc1.abc.def  \r\n"
        "\r\n");
    ASSERT_EQ(fields.size(), 4u);
    EXPECT_EQ(fields[0], (HeaderField{"Authentication-Results",
                                      "mx.example.test;\tspf=pass smtp.mailfrom=a@example.test"}));
    EXPECT_EQ(fields[1],
              (HeaderField{"Received", "from a  by b; Sun, 29 Nov 2026 09:00:01 +0000"}));
    EXPECT_EQ(fields[2].name, "received");
    EXPECT_EQ(fields[3], (HeaderField{"X-Mailcanary-Token", "mc1.abc.def"}));
    EXPECT_EQ(header_values(fields, "RECEIVED"),
              (std::vector<std::string>{"from a  by b; Sun, 29 Nov 2026 09:00:01 +0000",
                                        "from c by d; Sun, 29 Nov 2026 09:00:00 +0000"}));
    EXPECT_EQ(header_values(fields, "x-mailcanary-token"), std::vector<std::string>{"mc1.abc.def"});
    EXPECT_TRUE(header_values(fields, "Subject").empty());
}

TEST(HeaderBlock, StopsAtTheEmptyLineAndSkipsWhatIsNotAField) {
    const auto fields = parse_header_block(
        " continuation before any field\r\n"
        "A: 1\r\n"
        "not a field line\r\n"
        " its continuation\r\n"
        "Bad Name: x\r\n"
        ": no name\r\n"
        "B : obsolete space before the colon\n"  // bare LF too
        "C:\r\n"
        "\r\n"
        "P.S.: the body, not a header\r\n");
    EXPECT_EQ(fields, (std::vector<HeaderField>{
                          {"A", "1"}, {"B", "obsolete space before the colon"}, {"C", ""}}));
}

TEST(HeaderBlock, EmptyAndUnterminatedInput) {
    EXPECT_TRUE(parse_header_block("").empty());
    EXPECT_TRUE(parse_header_block("\r\n").empty());
    EXPECT_EQ(parse_header_block("A: no line end"),
              (std::vector<HeaderField>{{"A", "no line end"}}));
}

// ---------------------------------------------------------------------------------------------
// Authentication-Results: vocabulary

TEST(AuthResultsVocabulary, IsTheRfcTokenSetPerMethod) {
    const auto list = [](AuthMethod method) {
        const auto results = results_for(method);
        return std::vector<std::string_view>(results.begin(), results.end());
    };
    EXPECT_EQ(to_string(AuthMethod::spf), "spf");
    EXPECT_EQ(to_string(AuthMethod::dkim), "dkim");
    EXPECT_EQ(to_string(AuthMethod::dmarc), "dmarc");
    EXPECT_EQ(list(AuthMethod::spf),
              (std::vector<std::string_view>{"none", "neutral", "pass", "fail", "softfail",
                                             "policy", "temperror", "permerror"}));
    EXPECT_EQ(list(AuthMethod::dkim),
              (std::vector<std::string_view>{"none", "pass", "fail", "policy", "neutral",
                                             "temperror", "permerror"}));
    EXPECT_EQ(list(AuthMethod::dmarc),
              (std::vector<std::string_view>{"none", "pass", "fail", "temperror", "permerror"}));
    // Every result of every method is read back as itself.
    for (const AuthMethod method : {AuthMethod::spf, AuthMethod::dkim, AuthMethod::dmarc}) {
        for (const std::string_view result : results_for(method)) {
            const std::string value =
                "example.com; " + std::string(to_string(method)) + "=" + std::string(result);
            const auto parsed = parse_authentication_results(value);
            ASSERT_TRUE(parsed) << value;
            const auto& verdict = method == AuthMethod::spf    ? parsed->verdicts.spf
                                  : method == AuthMethod::dkim ? parsed->verdicts.dkim
                                                               : parsed->verdicts.dmarc;
            EXPECT_EQ(verdict, std::string(result)) << value;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication-Results: RFC 8601 Appendix B, each example message's header block

TEST(AuthResultsRfc8601, B2ServiceProvidedButNoAuthenticationDone) {
    const auto fields = parse_header_block(
        "Authentication-Results: example.org 1; none\r\n"
        "Received: from mail-router.example.com\r\n"
        "              (mail-router.example.com [192.0.2.1])\r\n"
        "          by server.example.org (8.11.6/8.11.6)\r\n"
        "              with ESMTP id g1G0r1kA003489;\r\n"
        "          Fri, Feb 15 2002 17:19:07 -0800\r\n"
        "From: sender@example.com\r\n"
        "Date: Fri, Feb 15 2002 16:54:30 -0800\r\n"
        "To: receiver@example.org\r\n"
        "Message-Id: <12345.abc@example.com>\r\n"
        "Subject: here's a sample\r\n"
        "\r\n"
        "Hello!  Goodbye!\r\n");
    EXPECT_EQ(fields.size(), 7u);
    const auto parsed =
        parse_authentication_results(header_values(fields, "authentication-results")[0]);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->authserv_id, "example.org");
    EXPECT_EQ(parsed->verdicts, AuthVerdicts{});
    EXPECT_EQ(message_verdicts(fields, ""), AuthVerdicts{});
    EXPECT_EQ(message_verdicts(fields, "example.org"), AuthVerdicts{});
    EXPECT_FALSE(received_span(fields));  // one Received field
}

TEST(AuthResultsRfc8601, B3ServiceProvidedAuthenticationDone) {
    const auto fields = parse_header_block(
        "Authentication-Results: example.com;\r\n"
        "          spf=pass smtp.mailfrom=example.net\r\n"
        "Received: from dialup-1-2-3-4.example.net\r\n"
        "              (dialup-1-2-3-4.example.net [192.0.2.200])\r\n"
        "          by mail-router.example.com (8.11.6/8.11.6)\r\n"
        "              with ESMTPA id g1G0r1kA003489;\r\n"
        "          Fri, Feb 15 2002 17:19:07 -0800\r\n"
        "From: sender@example.net\r\n"
        "Date: Fri, Feb 15 2002 16:54:30 -0800\r\n"
        "To: receiver@example.com\r\n"
        "Message-Id: <12345.abc@example.net>\r\n"
        "Subject: here's a sample\r\n"
        "\r\n");
    EXPECT_EQ(message_verdicts(fields, "example.com"), verdicts("pass", {}, {}));
    EXPECT_EQ(message_verdicts(fields, ""), verdicts("pass", {}, {}));
    EXPECT_EQ(message_verdicts(fields, "example.net"), AuthVerdicts{});
    // The same example as the earlier RFCs had it, with Sender ID, a method this does not read.
    EXPECT_EQ(verdicts_of("example.com;\r\n"
                          "          spf=pass smtp.mailfrom=example.net;\r\n"
                          "          sender-id=fail header.from=example.net"),
              verdicts("pass", {}, {}));
}

TEST(AuthResultsRfc8601, B4SeveralAuthenticationsDoneSingleMta) {
    const auto fields = parse_header_block(
        "Authentication-Results: example.com;\r\n"
        "          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
        "          spf=pass smtp.mailfrom=example.net\r\n"
        "Authentication-Results: example.com; iprev=pass\r\n"
        "          policy.iprev=192.0.2.200\r\n"
        "Received: from dialup-1-2-3-4.example.net (8.11.6/8.11.6)\r\n"
        "              (dialup-1-2-3-4.example.net [192.0.2.200])\r\n"
        "          by mail-router.example.com (8.11.6/8.11.6)\r\n"
        "              with ESMTPA id g1G0r1kA003489;\r\n"
        "          Fri, Feb 15 2002 17:19:07 -0800\r\n"
        "Date: Fri, Feb 15 2002 16:54:30 -0800\r\n"
        "To: receiver@example.com\r\n"
        "From: sender@example.net\r\n"
        "Message-Id: <12345.abc@example.net>\r\n"
        "Subject: here's a sample\r\n"
        "\r\n");
    const auto values = header_values(fields, "Authentication-Results");
    ASSERT_EQ(values.size(), 2u);
    EXPECT_EQ(parse_authentication_results(values[0]),
              (ParsedAuthResults{"example.com", verdicts("pass", {}, {})}));
    EXPECT_EQ(parse_authentication_results(values[1]),
              (ParsedAuthResults{"example.com", AuthVerdicts{}}));
    EXPECT_EQ(message_verdicts(fields, "example.com"), verdicts("pass", {}, {}));
}

TEST(AuthResultsRfc8601, B5SeveralAuthenticationsDoneDifferentMtas) {
    const auto fields = parse_header_block(
        "Authentication-Results: example.com;\r\n"
        "          dkim=pass (good signature) header.d=example.com\r\n"
        "Received: from mail-router.example.com\r\n"
        "              (mail-router.example.com [192.0.2.1])\r\n"
        "          by auth-checker.example.com (8.11.6/8.11.6)\r\n"
        "              with ESMTP id i7PK0sH7021929;\r\n"
        "          Fri, Feb 15 2002 17:19:22 -0800\r\n"
        "DKIM-Signature:  v=1; a=rsa-sha256; s=gatsby; d=example.com;\r\n"
        "          t=1188964191; c=simple/simple; h=From:Date:To:Subject:\r\n"
        "          Message-Id:Authentication-Results;\r\n"
        "          bh=sEuZGD/pSr7ANysbY3jtdaQ3Xv9xPQtS0m70;\r\n"
        "          b=EToRSuvUfQVP3Bkz ... rTB0t0gYnBVCM=\r\n"
        "Authentication-Results: example.com;\r\n"
        "          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n"
        "          spf=fail smtp.mailfrom=example.com\r\n"
        "Received: from dialup-1-2-3-4.example.net\r\n"
        "              (dialup-1-2-3-4.example.net [192.0.2.200])\r\n"
        "          by mail-router.example.com (8.11.6/8.11.6)\r\n"
        "              with ESMTPA id g1G0r1kA003489;\r\n"
        "          Fri, Feb 15 2002 17:19:07 -0800\r\n"
        "From: sender@example.com\r\n"
        "Date: Fri, Feb 15 2002 16:54:30 -0800\r\n"
        "To: receiver@example.com\r\n"
        "Message-Id: <12345.abc@example.com>\r\n"
        "Subject: here's a sample\r\n"
        "\r\n");
    const auto values = header_values(fields, "Authentication-Results");
    ASSERT_EQ(values.size(), 2u);
    EXPECT_EQ(verdicts_of(values[0]), verdicts({}, "pass", {}));
    EXPECT_EQ(verdicts_of(values[1]), verdicts("fail", {}, {}));
    // Only the topmost header of the trusted server counts; the lower one is from the hop before.
    EXPECT_EQ(message_verdicts(fields, "example.com"), verdicts({}, "pass", {}));
    EXPECT_EQ(message_verdicts(fields, ""), verdicts({}, "pass", {}));
    EXPECT_EQ(received_span(fields), 15s);
}

TEST(AuthResultsRfc8601, B6MultiTieredAuthenticationDone) {
    const auto fields = parse_header_block(
        "Authentication-Results: example.com;\r\n"
        "      dkim=pass reason=\"good signature\"\r\n"
        "        header.i=@mail-router.example.net;\r\n"
        "      dkim=fail reason=\"bad signature\"\r\n"
        "        header.i=@newyork.example.com\r\n"
        "Received: from mail-router.example.net\r\n"
        "          (mail-router.example.net [192.0.2.250])\r\n"
        "      by chicago.example.com (8.11.6/8.11.6)\r\n"
        "          for <recipient@chicago.example.com>\r\n"
        "          with ESMTP id i7PK0sH7021929;\r\n"
        "      Fri, Feb 15 2002 17:19:22 -0800\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; s=furble;\r\n"
        "      d=mail-router.example.net; t=1188964198; c=relaxed/simple;\r\n"
        "      h=From:Date:To:Message-Id:Subject:Authentication-Results;\r\n"
        "      bh=ftA9J6GtX8OpwUECzHnCkRzKw1uk6FNiLfJl5Nmv49E=;\r\n"
        "      b=oINEO8hgn/gnunsg ... 9n9ODSNFSDij3=\r\n"
        "Authentication-Results: example.net;\r\n"
        "      dkim=pass (good signature) header.i=@newyork.example.com\r\n"
        "Received: from smtp.newyork.example.com\r\n"
        "          (smtp.newyork.example.com [192.0.2.220])\r\n"
        "      by mail-router.example.net (8.11.6/8.11.6)\r\n"
        "          with ESMTP id g1G0r1kA003489;\r\n"
        "      Fri, Feb 15 2002 17:19:07 -0800\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; s=gatsby;\r\n"
        "      d=newyork.example.com;\r\n"
        "      t=1188964191; c=simple/simple;\r\n"
        "      h=From:Date:To:Message-Id:Subject;\r\n"
        "      bh=sEu28nfs9fuZGD/pSr7ANysbY3jtdaQ3Xv9xPQtS0m7=;\r\n"
        "      b=EToRSuvUfQVP3Bkz ... rTB0t0gYnBVCM=\r\n"
        "From: sender@newyork.example.com\r\n"
        "Date: Fri, Feb 15 2002 16:54:30 -0800\r\n"
        "To: meetings@example.net\r\n"
        "Message-Id: <12345.abc@newyork.example.com>\r\n"
        "Subject: here's a sample\r\n");
    // Two DKIM results, one passing: one good signature authenticates the message.
    EXPECT_EQ(message_verdicts(fields, "example.com"), verdicts({}, "pass", {}));
    EXPECT_EQ(message_verdicts(fields, "EXAMPLE.NET"), verdicts({}, "pass", {}));
    EXPECT_EQ(message_verdicts(fields, "example.org"), AuthVerdicts{});
    EXPECT_EQ(received_span(fields), 15s);
}

TEST(AuthResultsRfc8601, B7CommentHeavyExample) {
    const auto fields = parse_header_block(
        "Authentication-Results: foo.example.net (foobar) 1 (baz);\r\n"
        "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
        "      policy (A dot can go here) . (like that) expired\r\n"
        "      (this surprised me) = (as I wasn't expecting it) 1362471462\r\n");
    ASSERT_EQ(fields.size(), 1u);
    EXPECT_EQ(parse_authentication_results(fields[0].value),
              (ParsedAuthResults{"foo.example.net", verdicts({}, "fail", {})}));
    EXPECT_EQ(message_verdicts(fields, "foo.example.net"), verdicts({}, "fail", {}));
}

// ---------------------------------------------------------------------------------------------
// Authentication-Results: real-world headers

TEST(AuthResults, GmailStyle) {
    const auto fields = parse_header_block(
        "Authentication-Results: mx.google.com;\r\n"
        "       dkim=pass header.i=@example.com header.s=s1 header.b=Ab+/c=d;\r\n"
        "       arc=pass (i=1 spf=pass spfdomain=example.com dkim=pass dkdomain=example.com\r\n"
        "        dmarc=pass fromdomain=example.com);\r\n"
        "       spf=pass (google.com: domain of x@example.com designates 1.2.3.4 as permitted"
        " sender) smtp.mailfrom=x@example.com;\r\n"
        "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com\r\n");
    EXPECT_EQ(message_verdicts(fields, "mx.google.com"), verdicts("pass", "pass", "pass"));
    // What Gmail's comments and ARC results say is never taken for the real thing.
    EXPECT_EQ(verdicts_of("mx.google.com; arc=pass (i=1 spf=pass dkim=pass dmarc=pass);"
                          " spf=softfail (google.com: domain of transitioning x@example.com does"
                          " not designate 1.2.3.4 as permitted sender) smtp.mailfrom=x@example.com;"
                          " dmarc=fail (p=QUARANTINE sp=QUARANTINE dis=QUARANTINE)"
                          " header.from=example.com"),
              verdicts("softfail", {}, "fail"));
    EXPECT_EQ(verdicts_of("\"mx.google.com\"; dkim=pass header.b=\"URn9MW+F\" (comment)"),
              verdicts({}, "pass", {}));
}

TEST(AuthResults, Microsoft365StyleWithoutAuthservId) {
    const auto parsed = parse_authentication_results(
        "spf=pass (sender IP is 209.85.218.52) smtp.mailfrom=example.com; dkim=pass (signature was"
        " verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth="
        "pass reason=100");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->authserv_id, "");
    EXPECT_EQ(parsed->verdicts, verdicts("pass", "pass", "pass"));
    // "bestguesspass" is Microsoft's, not an RFC result: it stays unset.
    EXPECT_EQ(verdicts_of("spf=fail (sender IP is 192.0.2.9) smtp.mailfrom=example.com; dkim=none"
                          " (message not signed) header.d=none;dmarc=bestguesspass action=none"
                          " header.from=example.com;compauth=fail reason=001"),
              verdicts("fail", "none", {}));

    const auto fields = parse_header_block(
        "Authentication-Results: spf=pass (sender IP is 209.85.218.52)\r\n"
        " smtp.mailfrom=example.com; dkim=pass (signature was verified)\r\n"
        " header.d=example.com;dmarc=pass action=none\r\n"
        " header.from=example.com;compauth=pass reason=100\r\n");
    EXPECT_EQ(message_verdicts(fields, ""), verdicts("pass", "pass", "pass"));
    EXPECT_EQ(message_verdicts(fields, "outlook.com"), AuthVerdicts{});
}

TEST(AuthResults, CaseOfMethodsAndResultsDoesNotMatter) {
    EXPECT_EQ(verdicts_of("Example.COM; SPF=PASS smtp.mailfrom=x; DKIM=Fail; DMarc=TempError"),
              verdicts("pass", "fail", "temperror"));
}

TEST(AuthResults, HistoricSpfHardfailIsFail) {
    EXPECT_EQ(verdicts_of("example.com; spf=hardfail smtp.mailfrom=example.com"),
              verdicts("fail", {}, {}));
    EXPECT_EQ(verdicts_of("example.com; dkim=hardfail"), AuthVerdicts{});  // SPF's word only
}

TEST(AuthResults, UnknownMethodsAreIgnoredUnknownResultsLeaveTheVerdictUnset) {
    EXPECT_EQ(verdicts_of("example.com; iprev=pass policy.iprev=192.0.2.200; bimi=pass;"
                          " x-custom/2=pass; dkim-atps=pass; spf=pass"),
              verdicts("pass", {}, {}));
    EXPECT_EQ(verdicts_of("example.com; spf=passed; dkim=ok; dmarc=softfail"), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("example.com; spf=pass/x; dkim=pass=1"), AuthVerdicts{});
}

TEST(AuthResults, SeveralResultsOfOneMethodPassWinsElseTheFirst) {
    EXPECT_EQ(verdicts_of("example.com; dkim=fail header.d=a; dkim=pass header.d=b;"
                          " dkim=permerror header.d=c"),
              verdicts({}, "pass", {}));
    EXPECT_EQ(verdicts_of("example.com; dkim=permerror; dkim=fail"), verdicts({}, "permerror", {}));
    // A result outside the vocabulary does not count as the first.
    EXPECT_EQ(verdicts_of("example.com; dmarc=bogus; dmarc=fail"), verdicts({}, {}, "fail"));
}

TEST(AuthResults, VersionsQuotesAndCommentsInAwkwardPlaces) {
    EXPECT_EQ(parse_authentication_results("(leading) \"quoted \\\"id\\\"\" (c) 1 (d);"
                                           " spf/1=pass reason=\"a; dkim=fail\"; dkim=pass"),
              (ParsedAuthResults{"quoted \"id\"", verdicts("pass", "pass", {})}));
    EXPECT_EQ(verdicts_of("example.com; none (a=b; dmarc=fail)"), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("example.com;spf=pass(c)smtp.mailfrom=x;;dkim=pass;"),
              verdicts("pass", "pass", {}));
    EXPECT_EQ(verdicts_of("example.com; dkim=pass (a (nested; dkim=fail) comment \\) still)"),
              verdicts({}, "pass", {}));
    EXPECT_EQ(parse_authentication_results("example.com"),
              (ParsedAuthResults{"example.com", AuthVerdicts{}}));
}

TEST(AuthResults, UnusableValuesGiveNothing) {
    for (const char* value : {
             "",
             "   ",
             "; spf=pass",
             "(comment only)",
             "(unclosed comment",
             "example.com (unclosed; spf=pass",
             "example.com; spf=pass (unclosed",
             "example.com; spf=pass reason=\"unclosed",
             "\"unclosed id; spf=pass",
             "example.com junk; spf=pass",
             "example.com 1 2; spf=pass",
             "\"quoted\"=pass; spf=pass",
         }) {
        EXPECT_FALSE(parse_authentication_results(value)) << value;
    }
    // Oddities that still leave a usable header.
    EXPECT_EQ(verdicts_of("example.com; spf"), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("example.com; spf="), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("example.com; =pass; ==; ;;; spf=pass) x"), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("example.com; dkim=pass\\"), verdicts({}, {}, {}));
    EXPECT_EQ(verdicts_of("example.com; spf=pass; dkim"), verdicts("pass", {}, {}));
    EXPECT_EQ(verdicts_of(std::string("example.com; spf=pass\0dkim=pass", 31)), AuthVerdicts{});
}

TEST(AuthResults, EveryTruncationGivesBoundedVerdicts) {
    const std::string header =
        "mx.google.com (c (n) \\) x) 1;\r\n dkim/1=pass reason=\"a \\\" ; b\" header.i=@example.com"
        " header.b=\"Ab+/c=\";\r\n\tspf=pass (google.com: domain of x@example.com) "
        "smtp.mailfrom=x@example.com; dmarc=pass (p=NONE) header.from=example.com";
    for (std::size_t size = 0; size <= header.size(); ++size) {
        const auto parsed = parse_authentication_results(std::string_view(header).substr(0, size));
        if (!parsed) continue;
        for (const auto& [method, verdict] :
             {std::pair{AuthMethod::spf, parsed->verdicts.spf},
              std::pair{AuthMethod::dkim, parsed->verdicts.dkim},
              std::pair{AuthMethod::dmarc, parsed->verdicts.dmarc}}) {
            if (!verdict) continue;
            const auto results = results_for(method);
            EXPECT_NE(std::find(results.begin(), results.end(), *verdict), results.end());
        }
    }
    EXPECT_EQ(verdicts_of(header), verdicts("pass", "pass", "pass"));
    // Random bytes: the auth_results and mail_headers fuzzers (tests/fuzz), with these properties.
}

// ---------------------------------------------------------------------------------------------
// Authentication-Results: which header counts for a message

TEST(AuthResultsOfMessage, TrustedAuthservIdIgnoresForgedHeadersFromTheSender) {
    // The sender wrote passing results into the message; the receiving server's own header, on
    // top, says otherwise.
    const auto fields = parse_header_block(
        "Authentication-Results: mx.example.test; spf=fail smtp.mailfrom=evil.example;\r\n"
        "  dkim=none; dmarc=fail header.from=bank.example\r\n"
        "Received: from evil.example by mx.example.test; Sun, 29 Nov 2026 09:00:00 +0000\r\n"
        "Authentication-Results: mx.example.test; spf=pass; dkim=pass; dmarc=pass\r\n"
        "Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass\r\n");
    EXPECT_EQ(message_verdicts(fields, "mx.example.test"), verdicts("fail", "none", "fail"));
    EXPECT_EQ(message_verdicts(fields, "MX.Example.Test"), verdicts("fail", "none", "fail"));
    EXPECT_EQ(message_verdicts(fields, ""), verdicts("fail", "none", "fail"));
    EXPECT_EQ(message_verdicts(fields, "evil.example"), verdicts("pass", "pass", "pass"));

    // Without a header of the trusted server, a lower one of another id is not believed.
    const auto forged_only = parse_header_block(
        "Authentication-Results: relay.example.test; spf=none\r\n"
        "Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass\r\n");
    EXPECT_EQ(message_verdicts(forged_only, "mx.example.test"), AuthVerdicts{});
    EXPECT_EQ(message_verdicts(forged_only, ""), verdicts("none", {}, {}));
}

TEST(AuthResultsOfMessage, AnUnusableTopmostHeaderIsNotReplacedByALowerOne) {
    const auto fields = parse_header_block(
        "Authentication-Results: mx.example.test; spf=fail (cut short\r\n"
        "Authentication-Results: mx.example.test; spf=pass\r\n");
    EXPECT_EQ(message_verdicts(fields, ""), AuthVerdicts{});
    // With a trusted id, an unreadable header names nobody; the next of that id is the server's
    // own too, since a server removes headers with its id from incoming mail (RFC 8601 5).
    EXPECT_EQ(message_verdicts(fields, "mx.example.test"), verdicts("pass", {}, {}));
    EXPECT_EQ(message_verdicts({}, ""), AuthVerdicts{});
    EXPECT_EQ(message_verdicts({}, "mx.example.test"), AuthVerdicts{});
}

// As each provider writes them (docs/configuration.md has the authserv_id to set for each):
// - Yahoo: the id names the host, e.g. atlas-production.v2-mail-prod1-gq1.omega.yahoo.com (and
//   -bf1.): messages delivered to Yahoo in 2022-2025 published in public repositories. Note the
//   "pass(p=REJECT)" with no space, and results outside RFC 8601's vocabulary ("unknown").
// - Fastmail: one id, mx6.messagingengine.com, over several headers, one per group of results:
//   the test data of Mail::AuthenticationResults (Perl, CPAN).
// - Microsoft 365 and Outlook.com: no id, and the recipient's domain dropped in as a stray
//   resinfo ("smtp.mailfrom=arm.com; arm.com; dkim=none"): Exchange Online headers archived on
//   lore.kernel.org; an Outlook.com header of 2017 with "hotmail.com" in the same place, and
//   deltachat-core-rust's authres tests ("Authentication-Results from Outlook without an
//   authserv-id").

TEST(AuthResultsOfMessage, YahooNamesTheHostSoASuffixIsTrusted) {
    const auto fields = parse_header_block(
        "Authentication-Results: atlas-production.v2-mail-prod1-gq1.omega.yahoo.com;\r\n"
        " dkim=pass header.i=@pm.mtasv.net header.s=pm20250324"
        " arc_overridden_status=NOT_OVERRIDDEN;\r\n"
        " dkim=pass header.i=@mail.app.supabase.io header.s=20240920183138pm"
        " arc_overridden_status=NOT_OVERRIDDEN;\r\n"
        " spf=pass smtp.mailfrom=pm-bounces.mail.app.supabase.io"
        " arc_overridden_status=NOT_OVERRIDDEN;\r\n"
        " dmarc=pass(p=REJECT) header.from=mail.app.supabase.io"
        " arc_overridden_status=NOT_OVERRIDDEN;\r\n"
        "Received: from 104.245.209.200 (EHLO mta200a-ord.mtasv.net) by 10.253.233.86 with SMTPs;"
        " Wed, 06 Aug 2025 21:48:28 +0000\r\n"
        "Authentication-Results: forged.yahoo.com; spf=fail; dkim=fail; dmarc=fail\r\n");
    const auto pass = verdicts("pass", "pass", "pass");
    EXPECT_EQ(message_verdicts(fields, "*.yahoo.com"), pass);
    EXPECT_EQ(message_verdicts(fields, "*.omega.yahoo.com"), pass);
    EXPECT_EQ(message_verdicts(fields, "atlas-production.v2-mail-prod1-gq1.omega.yahoo.com"), pass);
    // A suffix that these hosts do not have matches nothing: the watch then says so.
    EXPECT_EQ(message_verdicts(fields, "*.mail.yahoo.com"), AuthVerdicts{});
    EXPECT_EQ(verdicts_of("atlas-production.v2-mail-prod1-bf1.omega.yahoo.com; dkim=unknown;"
                          " spf=none smtp.mailfrom=edm.example.tw; dmarc=unknown"
                          " header.from=edm.example.tw;"),
              verdicts("none", {}, {}));
}

TEST(AuthResultsOfMessage, AuthservIdSuffixes) {
    EXPECT_TRUE(authserv_id_matches("a.mail.yahoo.com", "*.mail.yahoo.com"));
    EXPECT_TRUE(authserv_id_matches("A.b.MAIL.Yahoo.com", "*.mail.yahoo.com"));
    EXPECT_FALSE(authserv_id_matches("mail.yahoo.com", "*.mail.yahoo.com"));
    EXPECT_FALSE(authserv_id_matches("evilmail.yahoo.com", "*.mail.yahoo.com"));
    EXPECT_FALSE(authserv_id_matches("", "*.mail.yahoo.com"));
    EXPECT_TRUE(authserv_id_matches("mx.google.com", "MX.google.com"));
    EXPECT_FALSE(authserv_id_matches("x.mx.google.com", "mx.google.com"));
}

TEST(AuthResultsOfMessage, FastmailSplitsItsResultsOverSeveralHeaders) {
    const auto fields = parse_header_block(
        "ARC-Authentication-Results: i=1; mx6.messagingengine.com; spf=pass\r\n"
        "Authentication-Results: mx6.messagingengine.com;\r\n"
        "    x-csa=none;\r\n"
        "    x-me-sender=none;\r\n"
        "    x-ptr=pass smtp.helo=mail-wm1-f67.google.com\r\n"
        "      policy.ptr=mail-wm1-f67.google.com\r\n"
        "Authentication-Results: mx6.messagingengine.com;\r\n"
        "    bimi=skipped (DMARC Policy is not at enforcement)\r\n"
        "Authentication-Results: mx6.messagingengine.com;\r\n"
        "    arc=none (no signatures found)\r\n"
        "Authentication-Results: mx6.messagingengine.com;\r\n"
        "    dkim=pass (2048-bit rsa key sha256) header.d=gmail.com\r\n"
        "      header.i=@gmail.com header.b=hr44hXYS header.a=rsa-sha256\r\n"
        "      header.s=20210112 x-bits=2048;\r\n"
        "    dmarc=pass policy.published-domain-policy=none\r\n"
        "      (p=none,sp=quarantine,d=none,d.eval=none) policy.policy-from=p\r\n"
        "      header.from=gmail.com;\r\n"
        "    iprev=pass smtp.remote-ip=209.85.128.67 (mail-wm1-f67.google.com);\r\n"
        "    spf=pass smtp.mailfrom=alice@gmail.com\r\n"
        "      smtp.helo=mail-wm1-f67.google.com\r\n"
        "Received: from mail-wm1-f67.google.com by mx6.messagingengine.com;"
        " Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        "Authentication-Results: mx6.messagingengine.com; dkim=fail; dmarc=fail\r\n");
    const auto pass = verdicts("pass", "pass", "pass");
    EXPECT_EQ(message_verdicts(fields, ""), pass);
    EXPECT_EQ(message_verdicts(fields, "*.messagingengine.com"), pass);
    // The sender's header, below the server's Received line, is not merged in.
    const auto forged_below = parse_header_block(
        "Authentication-Results: mx1.messagingengine.com; arc=none\r\n"
        "Received: from evil.example by mx1.messagingengine.com;"
        " Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        "Authentication-Results: mx1.messagingengine.com; spf=pass; dkim=pass; dmarc=pass\r\n");
    EXPECT_EQ(message_verdicts(forged_below, "*.messagingengine.com"), AuthVerdicts{});
    // Nor a header of another id right below.
    const auto other_id = parse_header_block(
        "Authentication-Results: mx1.messagingengine.com; dkim=fail\r\n"
        "Authentication-Results: evil.example; spf=pass; dkim=pass\r\n");
    EXPECT_EQ(message_verdicts(other_id, ""), verdicts({}, "fail", {}));
}

TEST(AuthResultsOfMessage, MicrosoftWritesNoAuthservIdAndStrayDomains) {
    const auto fields = parse_header_block(
        "Authentication-Results: spf=pass (sender IP is 217.140.110.172)\r\n"
        " smtp.mailfrom=arm.com; arm.com; dkim=none (message not signed)\r\n"
        " header.d=none;arm.com; dmarc=pass action=none\r\n"
        " header.from=arm.com;compauth=pass reason=100\r\n");
    EXPECT_EQ(authserv_ids(fields), std::vector<std::string>{""});
    EXPECT_EQ(message_verdicts(fields, ""), verdicts("pass", "none", "pass"));
    // Any authserv_id drops them all: for Microsoft it must stay unset.
    EXPECT_EQ(message_verdicts(fields, "outlook.com"), AuthVerdicts{});
    EXPECT_EQ(message_verdicts(fields, "hotmail.com"), AuthVerdicts{});
    // Outlook.com, 2017: "hotmail.com" is a stray resinfo, not an authserv-id; "test" is no RFC
    // result.
    EXPECT_EQ(verdicts_of("spf=pass (sender IP is 192.30.252.194) smtp.mailfrom=github.com;"
                          " hotmail.com; dkim=test (signature was verified)"
                          " header.d=github.com;hotmail.com; dmarc=pass action=none"
                          " header.from=github.com;"),
              verdicts("pass", {}, "pass"));
}

// ---------------------------------------------------------------------------------------------
// Dates

TEST(Rfc5322Date, CurrentAndObsoleteForms) {
    const auto nine = utc(2026, 11, 29, 9, 0, 0);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("29 Nov 2026 09:00:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 +0000 (UTC)"), nine);
    EXPECT_EQ(parse_rfc5322_date("  Sun, 29 Nov 2026 09:00:00 +0000 UTC "), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 01:00:00 -0800"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 14:30:00 +0530"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 GMT"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 UT"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 04:00:00 EST"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 01:00:00 pst"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 Z"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:00 A"), nine);  // military: -0000
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("sun,29 nov 2026 9:00:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 26 09:00:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 126 09:00:00 +0000"), nine);
    EXPECT_EQ(parse_rfc5322_date("(x) Sun (y), 29 (z (nested)) Nov 2026 09:00:00 (\\)) +0000"),
              nine);
    EXPECT_EQ(parse_rfc5322_date("Sun, 29 Nov 2026 09:00:60 +0000"), nine + 60s);  // leap second
    EXPECT_EQ(parse_rfc5322_date("Mon, 30 Nov 2026 00:30:00 +0100"), utc(2026, 11, 29, 23, 30, 0));
    EXPECT_EQ(parse_rfc5322_date("1 Jan 99 00:00:00 +0000"), utc(1999, 1, 1, 0, 0, 0));
    EXPECT_EQ(parse_rfc5322_date("Thu, 1 Jan 1970 00:00:00 +0000"), system_clock::time_point{});
    EXPECT_EQ(parse_rfc5322_date("Thu, 29 Feb 2024 12:00:00 +0000"), utc(2024, 2, 29, 12, 0, 0));
    // RFC 8601's examples put the month first.
    EXPECT_EQ(parse_rfc5322_date("Fri, Feb 15 2002 17:19:07 -0800"), utc(2002, 2, 16, 1, 19, 7));
}

// Found by the mail_headers fuzzer (tests/fuzz/regressions/mail_headers/): a year past 2262 made
// the conversion to system_clock's nanoseconds overflow.
TEST(Rfc5322Date, AYearTheClockCannotHoldIsNotADate) {
    EXPECT_EQ(parse_rfc5322_date("Mon, 1 Jan 2262 00:00:00 +0000"), utc(2262, 1, 1, 0, 0, 0));
    EXPECT_FALSE(parse_rfc5322_date("Fri, 15 Feb 2387 10:00:00 -0800").has_value());
    EXPECT_FALSE(parse_rfc5322_date("31 Dec 9999 23:59:60 -2359").has_value());
}

TEST(Rfc5322Date, WhatIsNotADate) {
    for (const char* text : {
             "",
             "yesterday",
             "Sun, 29 Nov 2026",
             "Sun, 29 Nov 2026 09:00:00",
             "Sun, 29 Nov 2026 09:00:00 +00",
             "Sun, 29 Nov 2026 09:00:00 +2400",
             "Sun, 29 Nov 2026 09:00:00 +0060",
             "Sun, 29 Nov 2026 09:00:00 CEST",
             "Sun, 29 Nov 2026 09:00:00 J",
             "Sun, 29 Nov 2026 09:00:00 GMT UTC",
             "Sun, 29 Nov 2026 09:00:00 +0000 and more words",
             "Sun, 29 Nov 2026 09:00:00 +0000 (unclosed",
             "Sun, 32 Nov 2026 09:00:00 +0000",
             "Sun, 0 Nov 2026 09:00:00 +0000",
             "Sun, 31 Nov 2026 09:00:00 +0000",
             "Sun, 29 Feb 2026 09:00:00 +0000",
             "Sun, 29 Foo 2026 09:00:00 +0000",
             "Sunday, 29 Nov 2026 09:00:00 +0000",
             "Sun, 29 Nov 1899 09:00:00 +0000",
             "Sun, 29 Nov 20260 09:00:00 +0000",
             "Sun, 29 Nov 2026 24:00:00 +0000",
             "Sun, 29 Nov 2026 09:60:00 +0000",
             "Sun, 29 Nov 2026 09:61 +0000",
             "Sun, 29 Nov 2026 09:0:00 +0000",
             "Sun, 29 Nov 2026 09:00:00:00 +0000",
             "Sun, 29 Nov 2026 09 +0000",
             "Sun, -1 Nov 2026 09:00:00 +0000",
             "Sun, 29 Nov +2026 09:00:00 +0000",
             "Sun, 29 Nov 2026 09:00:00 ++000",
         }) {
        EXPECT_FALSE(parse_rfc5322_date(text)) << text;
    }
}

// ---------------------------------------------------------------------------------------------
// Received

TEST(ReceivedSpan, PostfixThenDovecotLmtp) {
    const auto fields = parse_header_block(
        "Received: from mail.example.test\r\n"
        "\tby mail.example.test with LMTP\r\n"
        "\tid abc\r\n"
        "\t(envelope-from <a@b>)\r\n"
        "\tfor <c@d>; Sun, 29 Nov 2026 09:00:01 +0000\r\n"
        "Received: from x (localhost [127.0.0.1])\r\n"
        "\tby mail.example.test (Postfix) with ESMTPS id 4Xy;\r\n"
        "\tSun, 29 Nov 2026 09:00:00 +0000 (UTC)\r\n"
        "X-Mailcanary-Token: mc1.0123.4567\r\n"
        "\r\n");
    EXPECT_EQ(received_span(fields), 1s);

    const auto three_hops = parse_header_block(
        "Received: from mail.example.test by mail.example.test with LMTP id abc (envelope-from"
        " <a@b>) for <c@d>; Sun, 29 Nov 2026 09:00:01 +0000\r\n"
        "Received: by relay.example.test (no date: skipped)\r\n"
        "Received: from x (localhost [127.0.0.1]) by mail.example.test (Postfix) with ESMTPS id"
        " 4Xy; Sun, 29 Nov 2026 09:00:00 +0000 (UTC)\r\n"
        "Received: from canary.example.test (canary.example.test [192.0.2.7]) by"
        " mx.example.test (Postfix) with ESMTPS id 4Xz for <c@d>; Sun, 29 Nov 2026 00:59:58 -0800"
        " (PST)\r\n");
    EXPECT_EQ(received_span(three_hops), 3s);
}

TEST(ReceivedSpan, NeedsTwoDatesInOrder) {
    EXPECT_FALSE(received_span({}));
    EXPECT_FALSE(received_span(
        parse_header_block("Received: from a by b; Sun, 29 Nov 2026 09:00:00 +0000\r\n")));
    EXPECT_FALSE(received_span(
        parse_header_block("Received: from a by b; Sun, 29 Nov 2026 09:00:00 +0000\r\n"
                           "Received: from c by d; not a date\r\n"
                           "Received: from e by f\r\n")));
    // A clock behind the previous hop's: no figure rather than a negative one.
    EXPECT_FALSE(received_span(
        parse_header_block("Received: from a by b; Sun, 29 Nov 2026 09:00:00 +0000\r\n"
                           "Received: from c by d; Sun, 29 Nov 2026 09:00:05 +0000\r\n")));
    EXPECT_EQ(received_span(
                  parse_header_block("Received: from a by b; Sun, 29 Nov 2026 09:00:00 +0000\r\n"
                                     "Received: from c by d; Sun, 29 Nov 2026 09:00:00 +0000\r\n")),
              0s);
    // The date is after the last ';' only.
    EXPECT_EQ(received_span(
                  parse_header_block("Received: from a by b; Sun, 29 Nov 2026 09:00:02 +0000\r\n"
                                     "Received: from c (Sun, 29 Nov 2026 08:00:00 +0000) by d;"
                                     " Sun, 29 Nov 2026 09:00:00 +0000\r\n")),
              2s);
}

}  // namespace
}  // namespace mailcanary
