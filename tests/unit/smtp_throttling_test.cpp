// Throttling is not an outage: which SMTP replies say "throttled", and the sources.
// - RFC 3463 defines no rate-limiting code: X.7.0 is "other or undefined security status" and
//   X.7.1 "delivery not authorized, message refused" (greylisting uses 451 4.7.1), so the text
//   decides for them. RFC 5248's registry (https://www.iana.org/assignments/smtp-enhanced-status-
//   codes) adds X.7.28 "mail flood detected", which Gmail answers as "421 4.7.28 Our system has
//   detected an unusual rate of unsolicited mail" (https://support.google.com/a/answer/3726730).
// - Gmail: "421 4.7.0 Try again later, closing connection." and "454 4.7.0 Too many login
//   attempts, please try again later." (same page).
// - Exchange Online: "451 4.7.500-699 Access denied, please try again later" (the sending IP is
//   restricted for now) and "451 4.7.650 The mail server [IP] has been temporarily rate limited
//   due to IP reputation" (learn.microsoft.com, "Fix email delivery issues for error code
//   451 4.7.500-699").
// - Yahoo: "421 4.7.0 [TSS04] Messages from IP temporarily deferred due to unexpected volume or
//   user complaints" (senders.yahooinc.com, SMTP error codes).
// - Postfix (smtpd.c): "421 4.7.0 host Error: too many connections from IP" (anvil's connection
//   count and rate limits), "450 4.7.1 Error: too much mail from IP" (message rate).
// - Exim: "421 Too many concurrent SMTP connections from this IP address; please try again
//   later." (smtp_accept_max_per_host). Sendmail: "421 4.3.2 Connection rate limit exceeded."
// - Not throttling: greylisting ("451 4.7.1 Greylisting in action", "450 4.2.0 Greylisted"),
//   policy refusals in 4.7.x ("421 4.7.0 TLS required for RCPT domain", "451 4.7.1 Service
//   unavailable - try again later" from a policy daemon), a server going down ("421 4.3.2 Service
//   shutting down"), timeouts ("421 4.4.2 Error: timeout exceeded") and any 5xx.
#include "protocols/smtp_throttling.hpp"

#include <gtest/gtest.h>

namespace mailcanary::smtp {
namespace {

struct Case {
    const char* name;
    const char* bytes;  // one whole reply, as the server sent it
    bool throttled;
};

void PrintTo(const Case& reply_case, std::ostream* out) { *out << reply_case.name; }

class SmtpThrottling : public testing::TestWithParam<Case> {};

TEST_P(SmtpThrottling, ReadsTheReply) {
    ReplyParser parser;
    parser.feed(GetParam().bytes);
    ASSERT_EQ(parser.next(), ReplyParser::Status::reply) << parser.error();
    EXPECT_EQ(throttles(parser.reply()), GetParam().throttled) << GetParam().bytes;
}

INSTANTIATE_TEST_SUITE_P(
    Replies, SmtpThrottling,
    testing::Values(
        Case{"postfix_anvil",
             "421 4.7.0 mx.example.test Error: too many connections from 127.0.0.1\r\n", true},
        Case{"postfix_message_rate", "450 4.7.1 Error: too much mail from 192.0.2.1\r\n", true},
        Case{"gmail_try_again_later",
             "421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
             "421 4.7.0  https://support.google.com/a/answer/3221692\r\n",
             true},
        Case{"gmail_login_rate", "454 4.7.0 Too many login attempts, please try again later.\r\n",
             true},
        Case{"gmail_flood",
             "421-4.7.28 Our system has detected an unusual rate of\r\n"
             "421 4.7.28 unsolicited mail originating from your IP address.\r\n",
             true},
        // The status alone says it, on a 45x as on a 421.
        Case{"status_4_7_28_alone", "450 4.7.28 see https://example.test/flood\r\n", true},
        Case{"microsoft_4_7_500",
             "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)\r\n",
             true},
        Case{"microsoft_4_7_650",
             "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to "
             "IP reputation.\r\n",
             true},
        Case{"microsoft_range_end", "451 4.7.699 Access denied, please try again later\r\n", true},
        Case{"yahoo_tss04",
             "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected "
             "volume or user complaints - 4.16.55.1\r\n",
             true},
        Case{"exim_bare_421",
             "421 Too many concurrent SMTP connections from this IP address; please try again "
             "later.\r\n",
             true},
        Case{"sendmail_rate", "421 4.3.2 Connection rate limit exceeded.\r\n", true},
        Case{"bare_421_try_again_later", "421 Service busy, try again later\r\n", true},

        Case{"greylisting_4_7_1", "451 4.7.1 Greylisting in action, please try again later\r\n",
             false},
        Case{"greylisting_4_2_0",
             "450 4.2.0 <probe@example.test>: Recipient address rejected: "
             "Greylisted, see http://postgrey.schweikert.ch/\r\n",
             false},
        // Greylisting answered with a 421 that would otherwise read as Gmail's.
        Case{"greylisting_421", "421 4.7.0 Greylisted, please try again later\r\n", false},
        Case{"policy_4_7_1", "451 4.7.1 Service unavailable - try again later\r\n", false},
        Case{"policy_4_7_0_tls", "421 4.7.0 TLS required for RCPT domain, closing connection.\r\n",
             false},
        Case{"shutting_down", "421 4.3.2 Service shutting down, try again later\r\n", false},
        Case{"timeout", "421 4.4.2 mx.example.test Error: timeout exceeded\r\n", false},
        Case{"bare_421", "421 Service not available, closing transmission channel\r\n", false},
        Case{"status_4_7_27_not_a_rate", "450 4.7.27 SPF validation error\r\n", false},
        Case{"status_4_7_700_past_the_range", "451 4.7.700 policy\r\n", false},
        Case{"permanent_with_rate_words", "550 5.4.5 Daily user sending rate limit exceeded\r\n",
             false},
        Case{"permanent_4_7_28_lookalike", "550 5.7.28 mail flood detected\r\n", false},
        Case{"ok", "250 2.0.0 Ok: too many connections are fine here\r\n", false}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

}  // namespace
}  // namespace mailcanary::smtp
