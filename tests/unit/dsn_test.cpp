#include "protocols/dsn.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mailcanary {
namespace {

std::string crlf(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// What the test stack's Postfix (tests/stack/mailstack.sh) returned to probe@example.test for a
// message to a domain its error transport refuses, as Dovecot stored it.
constexpr std::string_view kPostfixBounce = R"(Return-Path: <>
Delivered-To: probe@example.test
Received: from mail.example.test ([127.0.0.1])
	by mail.example.test with LMTP
	id YLI9KLP6EWuEcQAAg+zDdQ
	(envelope-from <>)
	for <probe@example.test>; Thu, 03 Dec 2026 23:26:43 +0000
Received: by mail.example.test (Postfix)
	id 97863A7C531; Thu,  3 Dec 2026 23:26:43 +0000 (UTC)
Date: Thu,  3 Dec 2026 23:26:43 +0000 (UTC)
From: Mail Delivery System <MAILER-DAEMON@mail.example.test>
Subject: Undelivered Mail Returned to Sender
To: probe@example.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="82F61A7C52E.1796340403/mail.example.test"
Content-Transfer-Encoding: 8bit
Message-Id: <20261203232643.97863A7C531@mail.example.test>

This is a MIME-encapsulated message.

--82F61A7C52E.1796340403/mail.example.test
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<someone@elsewhere.invalid>: outbound mail disabled in test stack

--82F61A7C52E.1796340403/mail.example.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.test
X-Postfix-Queue-ID: 82F61A7C52E
X-Postfix-Sender: rfc822; probe@example.test
Arrival-Date: Thu,  3 Dec 2026 23:26:43 +0000 (UTC)

Final-Recipient: rfc822; someone@elsewhere.invalid
Original-Recipient: rfc822;someone@elsewhere.invalid
Action: failed
Status: 5.0.0
Diagnostic-Code: X-Postfix; outbound mail disabled in test stack

--82F61A7C52E.1796340403/mail.example.test
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

Return-Path: <probe@example.test>
Received: by mail.example.test (Postfix, from userid 0)
	id 82F61A7C52E; Thu,  3 Dec 2026 23:26:43 +0000 (UTC)
Date: Thu, 03 Dec 2026 23:40:00 +0000
Message-ID: <mc1.demo.20261203T234000Z.7f3a@mailcanary.invalid>
From: <probe@example.test>
To: <someone@elsewhere.invalid>
Subject: mailcanary probe
X-Mailcanary-Token: mc1.demo-token-value

This is a mailcanary probe message.

--82F61A7C52E.1796340403/mail.example.test--
)";

TEST(Dsn, ReadsARealPostfixBounceWithLfOrCrlfLineEnds) {
    for (const std::string& message : {std::string(kPostfixBounce), crlf(kPostfixBounce)}) {
        const auto report = parse_delivery_status_notification(message);
        ASSERT_TRUE(report);
        EXPECT_EQ(report->reporting_mta, "mail.example.test");
        ASSERT_EQ(report->recipients.size(), 1U);
        EXPECT_EQ(report->recipients[0],
                  (RecipientStatus{"someone@elsewhere.invalid", "failed", "5.0.0",
                                   "X-Postfix; outbound mail disabled in test stack", ""}));
        ASSERT_EQ(report->first_failure(), &report->recipients[0]);
        EXPECT_EQ(header_values(report->returned_header, "X-Mailcanary-Token"),
                  std::vector<std::string>{"mc1.demo-token-value"});
        EXPECT_EQ(header_values(report->returned_header, "Message-ID"),
                  std::vector<std::string>{"<mc1.demo.20261203T234000Z.7f3a@mailcanary.invalid>"});
    }
}

// The shape of RFC 3464's first example (10.1): a first part without a header of its own, a
// status of class 4 on a failed recipient, lower-case field names, a returned message.
constexpr std::string_view kRfcSimple = R"(Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
     boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

Reporting-MTA: dns; not the status part
Action: failed

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;louisl@larry.slip.umd.edu
Final-Recipient: rfc822;louisl@larry.slip.umd.edu
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

Message-ID: <original@cs.utk.edu>
Subject: the original

--RAA14128.773615765/CS.UTK.EDU--
)";

TEST(Dsn, APartWithoutHeaderIsPlainTextNotTheReport) {
    const auto report = parse_delivery_status_notification(kRfcSimple);
    ASSERT_TRUE(report);
    EXPECT_EQ(report->reporting_mta, "cs.utk.edu");
    ASSERT_EQ(report->recipients.size(), 1U);
    EXPECT_EQ(report->recipients[0],
              (RecipientStatus{"louisl@larry.slip.umd.edu", "failed", "4.0.0",
                               "smtp; 426 connection timed out", ""}));
    EXPECT_EQ(header_values(report->returned_header, "Message-ID"),
              std::vector<std::string>{"<original@cs.utk.edu>"});
}

// RFC 3464 10.2's kind: several recipients, a comment after the status, a remote MTA, one
// recipient only delayed; and the header alone returned (text/rfc822-headers), as Gmail does.
constexpr std::string_view kMultiRecipient =
    R"(Content-Type: multipart/report; report-type="Delivery-Status"; boundary=XYZ
Subject: Delivery Status Notification (Failure)

preamble, ignored
--XYZ
Content-Type: text/plain

Some recipients failed.
--XYZ
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example

Final-Recipient: rfc822; late@example.org
Action: delayed
Status: 4.4.7 (delivery time expired)
Will-Retry-Until: Fri, 8 Jul 1994 09:21:47 -0400

Final-Recipient: rfc822; gone@example.org
Action: Failed (permanent)
Status: 5.1.1 (bad destination mailbox address)
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: user unknown
--XYZ
Content-Type: text/rfc822-headers

Message-ID: <probe@agent.example>
X-Mailcanary-Token: mc1.token
--XYZ--
)";

TEST(Dsn, TheFirstFailedRecipientWinsOverADelayedOne) {
    const auto report = parse_delivery_status_notification(kMultiRecipient);
    ASSERT_TRUE(report);
    ASSERT_EQ(report->recipients.size(), 2U);
    EXPECT_EQ(report->recipients[0].action, "delayed");
    EXPECT_EQ(report->recipients[0].status, "4.4.7");
    const RecipientStatus* failure = report->first_failure();
    ASSERT_EQ(failure, &report->recipients[1]);
    EXPECT_EQ(*failure, (RecipientStatus{"gone@example.org", "failed", "5.1.1",
                                         "smtp; 550 5.1.1 <gone@example.org>: user unknown",
                                         "mx.example.org"}));
    EXPECT_EQ(header_values(report->returned_header, "X-Mailcanary-Token"),
              std::vector<std::string>{"mc1.token"});
}

TEST(Dsn, OnlyADelayIsNoFailure) {
    std::string delayed(kMultiRecipient);
    delayed.replace(delayed.find("Action: Failed (permanent)"), 26, "Action: relayed");
    const auto report = parse_delivery_status_notification(delayed);
    ASSERT_TRUE(report);
    EXPECT_EQ(report->first_failure(), nullptr);
}

TEST(Dsn, AReportInsideAMultipartMixedIsFound) {
    const std::string wrapped =
        "Content-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\nContent-Type: "
        "text/plain\n\nA disclaimer.\n--outer\n" +
        std::string(kMultiRecipient) + "--outer--\n";
    const auto report = parse_delivery_status_notification(wrapped);
    ASSERT_TRUE(report);
    EXPECT_EQ(report->recipients.size(), 2U);
}

TEST(Dsn, AStatusThatIsNotACodeIsLeftEmpty) {
    for (const std::string_view status : {"5.1", "6.0.0", "5.1.1234", "5.x.1", "550", ""}) {
        std::string message(kMultiRecipient);
        message.replace(message.find("5.1.1 (bad"), 5, status);
        const auto report = parse_delivery_status_notification(message);
        ASSERT_TRUE(report) << status;
        EXPECT_EQ(report->recipients[1].status, "") << status;
    }
}

TEST(Dsn, WhatIsNotADeliveryReportGivesNothing) {
    // A read receipt (RFC 8098) is a multipart/report of another type.
    const std::string read_receipt =
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n"
        "--b\nContent-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; a@b\n"
        "--b--\n";
    const std::string without_recipient_block =
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n--b--\n";
    const std::string not_reports[] = {
        // A plain message that merely talks about a bounce.
        "Subject: hello\n\nAction: failed\nStatus: 5.1.1\n",
        read_receipt,
        without_recipient_block,
        // No boundary, a boundary never used, no body.
        "Content-Type: multipart/report; report-type=delivery-status\n\n--b\n",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=c\n\n--b\n",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
        "",
    };
    for (const auto& message : not_reports) {
        EXPECT_FALSE(parse_delivery_status_notification(message)) << message;
    }
}

TEST(Dsn, AReportCutBeforeItsCloseDelimiterGivesWhatItHas) {
    const std::string message(
        kPostfixBounce.substr(0, kPostfixBounce.find("Content-Description: Undelivered")));
    const auto report = parse_delivery_status_notification(message);
    ASSERT_TRUE(report);
    EXPECT_EQ(report->recipients.size(), 1U);
    EXPECT_TRUE(report->returned_header.empty());
}

TEST(Dsn, NestingIsBounded) {
    std::string message(kMultiRecipient);
    for (int level = 0; level < 5; ++level) {
        const std::string boundary = "n" + std::to_string(level);
        message = "Content-Type: multipart/mixed; boundary=" + boundary + "\n\n--" + boundary +
                  "\n" + message + "--" + boundary + "--\n";
    }
    EXPECT_FALSE(parse_delivery_status_notification(message));
}

}  // namespace
}  // namespace mailcanary
