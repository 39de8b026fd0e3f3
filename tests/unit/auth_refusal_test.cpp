// A refused login by policy is not a wrong password. The replies are the providers' own, as
// public transcripts show them (tests/support/provider_transcripts.hpp names each source); the
// decisions:
// - policy (auth_disabled): Microsoft's 5.7.139 when its text names SMTP AUTH or basic
//   authentication disabled, security defaults or a conditional access policy; Microsoft's
//   550 5.7.30 (basic authentication retired for Client Submission); any 534 and any 5.7.9
//   (RFC 4954 6: "Authentication mechanism is too weak"; Gmail's "Application-specific password
//   required", given for the account's right password when 2-Step Verification is on); Gmail's
//   5.7.14 "Please log in via your web browser" (a sign-in Google blocked). Over IMAP: Gmail's
//   [WEBALERT] and "[ALERT] Application-specific password required", Outlook.com's "Basic
//   authentication is disabled".
// - wrong credentials (auth_rejected): Microsoft's 5.7.139 "the user credentials were
//   incorrect" and 5.7.3 ([MS-SMTPNTLM] 2.2.1.4: "the user name or password is incorrect"),
//   Gmail's 5.7.8 and [AUTHENTICATIONFAILED], anything not recognised, and Exchange's IMAP
//   "LOGIN failed." / "AUTHENTICATE failed.", which it says for every cause alike.
// - 5.7.57 ("Client not authenticated to send mail") answers MAIL FROM, not AUTH: it stays an
//   accept failure (mail_rejected).
#include "protocols/auth_refusal.hpp"

#include <gtest/gtest.h>

#include "protocols/imap_response.hpp"
#include "support/provider_transcripts.hpp"

namespace mailcanary {
namespace {

namespace providers = test::providers;

smtp::Reply parsed(const std::string& bytes) {
    smtp::ReplyParser parser;
    parser.feed(bytes);
    EXPECT_EQ(parser.next(), smtp::ReplyParser::Status::reply) << bytes;
    return parser.reply();
}

struct SmtpCase {
    std::string reply;
    FailureReason reason;
};

TEST(AuthRefusal, SmtpPolicyRefusalsAreNotWrongPasswords) {
    const std::vector<SmtpCase> cases{
        {providers::kMicrosoftSmtpAuthDisabled, FailureReason::auth_disabled},
        {providers::kMicrosoftBasicAuthDisabled, FailureReason::auth_disabled},
        {providers::kMicrosoftBasicAuthRetired, FailureReason::auth_disabled},
        // Entra ID security defaults and conditional access (public nodemailer and smtplib logs).
        {"535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
         "security defaults policy. Contact your administrator.\r\n",
         FailureReason::auth_disabled},
        {"535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
         "authenticated successfully. Contact your administrator.\r\n",
         FailureReason::auth_disabled},
        {providers::kGmailAppPasswordRequired, FailureReason::auth_disabled},
        {providers::kGmailWebLoginRequired, FailureReason::auth_disabled},
        {"534 Authentication mechanism is too weak\r\n", FailureReason::auth_disabled},
        // RFC 4954's enhanced code for the same, with a server that answers it as 535.
        {"535 5.7.9 Authentication mechanism is too weak\r\n", FailureReason::auth_disabled},
        {providers::kMicrosoftWrongPassword, FailureReason::auth_rejected},
        {providers::kMicrosoftWrongPasswordOld, FailureReason::auth_rejected},
        {providers::kGmailWrongPassword, FailureReason::auth_rejected},
        {"535 5.7.8 Error: authentication failed: authentication failure\r\n",
         FailureReason::auth_rejected},
        // A 5.7.139 whose reason is not one of the known policies keeps the old meaning.
        {"535 5.7.139 Authentication unsuccessful, something new.\r\n",
         FailureReason::auth_rejected},
        {"535 Authentication failed\r\n", FailureReason::auth_rejected},
        {"554 5.7.0 Too many authentication errors\r\n", FailureReason::auth_rejected},
    };
    for (const auto& [reply, reason] : cases) {
        EXPECT_EQ(to_string(smtp_auth_refusal(parsed(reply))), to_string(reason)) << reply;
    }
}

// A login's tagged completion, cut as the dialog cuts it into code and text.
FailureReason imap_refusal(const std::string& completion) {
    imap::ResponseReader reader;
    reader.feed("C1 " + completion);
    const auto response = reader.next();
    EXPECT_TRUE(response && response->name == "NO") << completion;
    return response ? imap_login_refusal(response->code, response->text) : FailureReason::protocol;
}

TEST(AuthRefusal, ImapPolicyRefusalsAreNotWrongPasswords) {
    const std::vector<SmtpCase> cases{
        {providers::kGmailImapAppPasswordRequired, FailureReason::auth_disabled},
        {providers::kGmailImapWebLoginRequired, FailureReason::auth_disabled},
        {"NO [ALERT] Please log in via your web browser: "
         "https://support.google.com/mail/accounts/answer/78754 (Failure)\r\n",
         FailureReason::auth_disabled},
        {providers::kMicrosoftImapBasicAuthDisabled, FailureReason::auth_disabled},
        {providers::kGmailImapWrongPassword, FailureReason::auth_rejected},
        {providers::kMicrosoftImapLoginFailed, FailureReason::auth_rejected},
        {"NO AUTHENTICATE failed.\r\n", FailureReason::auth_rejected},
        {"NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", FailureReason::auth_rejected},
        {"NO [UNAVAILABLE] Temporary authentication failure.\r\n", FailureReason::auth_tempfail},
    };
    for (const auto& [completion, reason] : cases) {
        EXPECT_EQ(to_string(imap_refusal(completion)), to_string(reason)) << completion;
    }
}

}  // namespace
}  // namespace mailcanary
