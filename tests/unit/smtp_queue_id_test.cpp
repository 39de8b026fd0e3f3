// Queue ids from the replies real servers and services send to the final dot, as seen on the
// wire. Where a source shows only the form (Mandrill, Microsoft 365, Amazon SES, Haraka), the
// id's value below is made up in the service's shape. Where each reply was seen:
//   Postfix      "250 2.0.0 Ok: queued as 224B824BD40": github.com/stalwartlabs/mail-send/issues/24
//   SendGrid     "250 Ok: queued as nhIMmON9SFOPcT0ii4nt2A": github.com/sendgrid/docs/issues/2638
//   Emailit      "250 2.0.0 OK: queued as em_4yM2nTvR8oPcX3uZiKeLg7sB":
//                emailit.com/docs/changelog/2026-09-27-smtp-email-id-reply/
//   Mandrill     "250 Ok: requeued as <id>": github.com/nodemailer/nodemailer/issues/412
//   Yandex       "250 2.0.0 Ok: queued on smtp3m.mail.yandex.net as
//   1430081058-6ltgNFKSir-iHEKdOrm":
//                github.com/nodemailer/nodemailer/issues/422
//   Exim 4.96    "250 OK id=1xZ1xz-0008NV-22": seen on the test machine (/work/shared/notes);
//   Exim 4.97+   "250 OK id=10HmaX-000000005vi-0000": Exim's own test suite, test/stdout/4002
//   Sendmail     "250 2.0.0 n54CEgvI018278 Message accepted for delivery": a PHP SMTP client's
//                comment listing data-end replies (public code search)
//   OpenSMTPD    "250 2.0.0 471ecd43 Message accepted for delivery": OpenSMTPD 6.8 on the test
//                machine (issue 16)
//   Exchange     "250 2.6.0 <20111025103822.7F94E1C0299@ASTNAGIOS> [InternalId=274498] Queued
//                mail for delivery": a Postfix log quoting Exchange 2010 (public code search);
//                the <...> is "the Internet message ID for the queued message" (Microsoft,
//                SmtpResponse.QueuedMailForDelivery, Exchange 2010 SDK)
//   Microsoft 365 "250 2.6.0 <id> [InternalId=N, Hostname=H] Queued mail for delivery" (issue 16),
//                with "N bytes in T, R KB/sec" before "Queued" on today's servers
//   Hotmail      "250 <SNT0-MC3-F1964xSNUX00142e45@SNT0-MC3-F19.Snt0.hotmail.com> Queued mail for
//                delivery": a monitoring tool's README (public code search)
//   Gmail        "250 2.0.0 OK  1571601091 d44si1315748ede.149 - gsmtp":
//                github.com/emersion/go-smtp/issues/86
//   qmail        "250 ok 1375388751 qp 26627", and "250 ok 1349174460 qp 13230 by
//                mx1.example.org" in a Postfix log (public code search)
//   Haraka       "250 Message Queued (<transaction uuid>)": haraka/Haraka connection.js
//   Amazon SES   "250 Ok MessageID": docs.aws.amazon.com/ses/latest/DeveloperGuide/
//                smtp-response-codes.html
//   MailerSend   "250 Accepted" (no id): github.com/knadh/listmonk/issues/2206
#include "protocols/smtp_queue_id.hpp"

#include <gtest/gtest.h>

#include "protocols/smtp_reply.hpp"

namespace mailcanary::smtp {
namespace {

struct ReplyCase {
    const char* server;
    const char* reply;  // as on the wire, without CRLF
    std::optional<std::string> id;
};

void PrintTo(const ReplyCase& reply_case, std::ostream* out) { *out << reply_case.server; }

class QueueId : public testing::TestWithParam<ReplyCase> {};

TEST_P(QueueId, IsTakenFromTheReplyToTheFinalDot) {
    ReplyParser parser;
    parser.feed(std::string(GetParam().reply) + "\r\n");
    ASSERT_EQ(parser.next(), ReplyParser::Status::reply) << parser.error();
    EXPECT_EQ(queue_id_from_reply(parser.reply().lines.front()), GetParam().id);
}

INSTANTIATE_TEST_SUITE_P(
    Servers, QueueId,
    testing::Values(
        ReplyCase{"postfix", "250 2.0.0 Ok: queued as 224B824BD40", "224B824BD40"},
        ReplyCase{"postfix_long_id", "250 2.0.0 Ok: queued as 4Q9xYz1ABCz", "4Q9xYz1ABCz"},
        ReplyCase{"sendgrid", "250 Ok: queued as nhIMmON9SFOPcT0ii4nt2A", "nhIMmON9SFOPcT0ii4nt2A"},
        ReplyCase{"emailit", "250 2.0.0 OK: queued as em_4yM2nTvR8oPcX3uZiKeLg7sB",
                  "em_4yM2nTvR8oPcX3uZiKeLg7sB"},
        ReplyCase{"mandrill", "250 Ok: requeued as 5a2f0c9e8b1d4e6f", "5a2f0c9e8b1d4e6f"},
        ReplyCase{
            "yandex",
            "250 2.0.0 Ok: queued on smtp3m.mail.yandex.net as 1430081058-6ltgNFKSir-iHEKdOrm",
            "1430081058-6ltgNFKSir-iHEKdOrm"},
        ReplyCase{"exim_4_96", "250 OK id=1xZ1xz-0008NV-22", "1xZ1xz-0008NV-22"},
        ReplyCase{"exim_4_97", "250 OK id=10HmaX-000000005vi-0000", "10HmaX-000000005vi-0000"},
        ReplyCase{"sendmail", "250 2.0.0 n54CEgvI018278 Message accepted for delivery",
                  "n54CEgvI018278"},
        ReplyCase{"opensmtpd", "250 2.0.0 471ecd43 Message accepted for delivery", "471ecd43"},
        ReplyCase{"exchange_2010",
                  "250 2.6.0 <20111025103822.7F94E1C0299@ASTNAGIOS> [InternalId=274498] Queued "
                  "mail for delivery",
                  "20111025103822.7F94E1C0299@ASTNAGIOS"},
        ReplyCase{"microsoft_365",
                  "250 2.6.0 <1a2b3c.mailcanary@probe.example> [InternalId=28501402574998, "
                  "Hostname=PH0PR11MB5159.namprd11.prod.outlook.com] 11276 bytes in 0.081, "
                  "135.006 KB/sec Queued mail for delivery",
                  "1a2b3c.mailcanary@probe.example"},
        ReplyCase{"hotmail",
                  "250 <SNT0-MC3-F1964xSNUX00142e45@SNT0-MC3-F19.Snt0.hotmail.com> Queued mail "
                  "for delivery",
                  "SNT0-MC3-F1964xSNUX00142e45@SNT0-MC3-F19.Snt0.hotmail.com"},
        ReplyCase{"gmail", "250 2.0.0 OK  1571601091 d44si1315748ede.149 - gsmtp",
                  "d44si1315748ede.149"},
        ReplyCase{"qmail", "250 ok 1375388751 qp 26627", "26627"},
        ReplyCase{"qmail_with_host", "250 ok 1349174460 qp 13230 by mx1.example.org", "13230"},
        ReplyCase{"haraka", "250 Message Queued (F0A84EC8-7B77-4D5B-8E67-8F0A74A4A5F1.1)",
                  "F0A84EC8-7B77-4D5B-8E67-8F0A74A4A5F1.1"},
        ReplyCase{"amazon_ses",
                  "250 Ok 0100018c1f2e3d4c-5a6b7c8d-9e0f-1a2b-3c4d-5e6f7a8b9c0d-000000",
                  "0100018c1f2e3d4c-5a6b7c8d-9e0f-1a2b-3c4d-5e6f7a8b9c0d-000000"},
        // Replies that name no id: none is made up.
        ReplyCase{"postfix_no_id", "250 2.0.0 Ok", std::nullopt},
        ReplyCase{"mailersend", "250 Accepted", std::nullopt},
        ReplyCase{"plain_ok_word", "250 Ok queued", std::nullopt},
        ReplyCase{"queued_as_nothing", "250 2.0.0 Ok: queued as", std::nullopt},
        ReplyCase{"empty_id_word", "250 OK id=", std::nullopt},
        ReplyCase{"empty_brackets", "250 <> Queued mail for delivery", std::nullopt}),
    [](const auto& test_case) { return std::string(test_case.param.server); });

}  // namespace
}  // namespace mailcanary::smtp
