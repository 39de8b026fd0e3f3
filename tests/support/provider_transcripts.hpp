// What the big providers' servers say, byte for byte, as public transcripts show them: the
// scripted fakes and dialog tests that stand in for Gmail, Microsoft 365 and Outlook.com replay
// these. None of those services can be reached from a test; each line names where it was seen.
#pragma once

#include <string>

namespace mailcanary::test::providers {

// smtp.office365.com:587. Banner, EHLO and STARTTLS as logged in simonrob/email-oauth2-proxy
// issues #95 (2022-11) and #416 (2026-05); after TLS, Exchange offers AUTH LOGIN XOAUTH2 in the
// place of STARTTLS (issue #416's second EHLO).
inline const std::string kMicrosoftBanner =
    "220 AM3PR05CA0094.outlook.office365.com Microsoft ESMTP MAIL Service ready at Wed, 9 Nov "
    "2022 10:09:41 +0000\r\n";
inline const std::string kMicrosoftEhlo =
    "250-AM3PR05CA0094.outlook.office365.com Hello [77.233.241.24]\r\n250-SIZE 157286400\r\n"
    "250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n"
    "250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
inline const std::string kMicrosoftStartTls = "220 2.0.0 SMTP server ready\r\n";
inline const std::string kMicrosoftEhloAfterTls =
    "250-AM3PR05CA0094.outlook.office365.com Hello [77.233.241.24]\r\n250-SIZE 157286400\r\n"
    "250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH LOGIN XOAUTH2\r\n"
    "250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
// SMTP AUTH turned off for the tenant: email-oauth2-proxy #193, nodemailer #1484.
inline const std::string kMicrosoftSmtpAuthDisabled =
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[MN2PR05CA0004.namprd05.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]\r\n";
// Passwords turned off (OAuth2 only): rpremraj/mailR #107, nodemailer #1714.
inline const std::string kMicrosoftBasicAuthDisabled =
    "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
    "[BM1P287CA0015.INDP287.PROD.OUTLOOK.COM]\r\n";
// Basic authentication retired for Client Submission: Microsoft's Exchange Team blog, "Exchange
// Online to retire Basic auth for Client Submission (SMTP AUTH)" (2024-04, updated 2025-06).
inline const std::string kMicrosoftBasicAuthRetired =
    "550 5.7.30 Basic authentication is not supported for Client Submission.\r\n";
// A wrong password, same enhanced code as the policies above: seen in nodemailer logs in public
// repositories ("the user credentials were incorrect", 2024-2026).
inline const std::string kMicrosoftWrongPassword =
    "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. "
    "[CH2PR15CA0029.namprd15.prod.outlook.com]\r\n";
// The older wrong-password answer ([MS-SMTPNTLM] 2.2.1.4; jstedfast/MailKit #700).
inline const std::string kMicrosoftWrongPasswordOld =
    "535 5.7.3 Authentication unsuccessful [BN3PR03CA0067.namprd03.prod.outlook.com]\r\n";
inline const std::string kMicrosoftQuit = "221 2.0.0 Service closing transmission channel\r\n";

// smtp.gmail.com:587 as logged in PHPMailer/PHPMailer #749 and WWBN/AVideo #3212.
inline const std::string kGmailBanner = "220 smtp.gmail.com ESMTP r69sm2167818ota.32 - gsmtp\r\n";
inline const std::string kGmailEhlo =
    "250-smtp.gmail.com at your service, [209.236.115.247]\r\n250-SIZE 35882577\r\n"
    "250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
    "250-CHUNKING\r\n250 SMTPUTF8\r\n";
inline const std::string kGmailStartTls = "220 2.0.0 Ready to start TLS\r\n";
inline const std::string kGmailEhloAfterTls =
    "250-smtp.gmail.com at your service, [209.236.115.247]\r\n250-SIZE 35882577\r\n"
    "250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
// The account's own password on an account with 2-Step Verification: Der-Henning/tgtg #517,
// bberkay/openmail #1.
inline const std::string kGmailAppPasswordRequired =
    "534-5.7.9 Application-specific password required. For more information, go to\r\n"
    "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor "
    "ffacd0b85a97d-368119970e7sm1809147f8f.21 - gsmtp\r\n";
// A sign-in Google blocked: PHPMailer #749, YetiForceCRM #14235.
inline const std::string kGmailWebLoginRequired =
    "534-5.7.14 Please log in via your web browser and\r\n534-5.7.14 then try again.\r\n"
    "534-5.7.14  Learn more at\r\n534 5.7.14  https://support.google.com/mail/answer/78754 "
    "r69sm2167818ota.32 - gsmtp\r\n";
// A wrong password: PHPMailer #1708, bakercp/ofxSMTP #13.
inline const std::string kGmailWrongPassword =
    "535-5.7.8 Username and Password not accepted. Learn more at\r\n"
    "535 5.7.8  https://support.google.com/mail/answer/14257 j88sm1532869qgf.7 - gsmtp\r\n";
inline const std::string kGmailQuit = "221 2.0.0 closing connection r69sm2167818ota.32 - gsmtp\r\n";

// imap.gmail.com:993. Gmail's greeting carries no capabilities; the list is the one logged in
// many public IMAP traces (imapsync, MailKit); the refusals are andreiaugustin/gmail_extractor
// #4 (a wrong password, then the right one with 2-Step Verification on), mutt-wizard #831 and
// smiley22/S22.Imap #116.
inline const std::string kGmailImapGreeting =
    "* OK Gimap ready for requests from 198.51.100.7 a1mb123456789abc\r\n";
inline const std::string kGmailImapCapability =
    "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY "
    "SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH\r\n";
inline const std::string kGmailImapWrongPassword =
    "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n";
inline const std::string kGmailImapAppPasswordRequired =
    "NO [ALERT] Application-specific password required: "
    "https://support.google.com/accounts/answer/185833 (Failure)\r\n";
inline const std::string kGmailImapWebLoginRequired =
    "NO [WEBALERT https://accounts.google.com/ContinueSignIn?sarp=1&scc=1] Web login required.\r\n";

// outlook.office365.com:993 (Microsoft 365 and Outlook.com): greeting and capabilities from
// imapsync/imapsync #317 and mjs/imapclient #602; a refused login says nothing more than
// "LOGIN failed." (or "AUTHENTICATE failed.", MicrosoftDocs/office-developer-exchange-docs
// #87), whatever the cause, except Outlook.com's "Basic authentication is disabled." with BYE
// (holon-run/uxc #445).
inline const std::string kMicrosoftImapGreeting =
    "* OK The Microsoft Exchange IMAP4 service is ready. "
    "[TABPADQAUAAxADIAMwBDAEEAMAAyADMAMwAuAEcAQgBSAFAAMQAyADMALgBQAFIATwBEAC4ATwBVAFQATABPAE8ASwAu"
    "AEMATwBNAA==]\r\n";
inline const std::string kMicrosoftImapCapability =
    "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN "
    "IDLE NAMESPACE LITERAL+\r\n";
inline const std::string kMicrosoftImapLoginFailed = "NO LOGIN failed.\r\n";
inline const std::string kMicrosoftImapBasicAuthDisabled =
    "NO Basic authentication is disabled.\r\n"
    "* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n";

// Throttling, over IMAP. Gmail refuses a login past 15 sessions of one account
// (https://support.google.com/mail/answer/7126229, "Too many simultaneous connections"): to
// AUTHENTICATE in jstedfast/MailKit #377, to LOGIN in zone-eu/wildduck #35.
inline const std::string kGmailImapTooManyConnections =
    "NO [ALERT] Too many simultaneous connections. (Failure)\r\n";
// Gmail's command and bandwidth limits (Workspace: 2,500 MB of IMAP download a day,
// https://support.google.com/a/answer/1071518), to FETCH: ljmerza/ha-email-sensor #16,
// mailcow/mailcow-dockerized #1554.
inline const std::string kGmailImapOverQuota =
    "NO [OVERQUOTA] Account exceeded command or bandwidth limits.\r\n";
// Exchange Online: to FETCH in ikvk/imap_tools #135 (to APPEND in imapsync/imapsync #198); as BAD
// and a BYE in simonrob/email-oauth2-proxy #191.
inline const std::string kMicrosoftImapThrottled =
    "NO Request is throttled. Suggested Backoff Time: 299910 milliseconds\r\n";
inline const std::string kMicrosoftImapThrottledBye =
    "BAD Request is throttled. Suggested Backoff Time: 89117 milliseconds\r\n"
    "* BYE Connection closed. 14\r\n";

}  // namespace mailcanary::test::providers
