#include "protocols/auth_refusal.hpp"

#include <algorithm>
#include <array>

#include "common/text.hpp"

namespace mailcanary {
namespace {

// Microsoft answers "535 5.7.139 Authentication unsuccessful, <why>" both for a policy and for a
// wrong password ("the user credentials were incorrect"): only the why tells them apart.
constexpr std::array<std::string_view, 4> kMicrosoftPolicy{
    "SmtpClientAuthentication is disabled",  // SMTP AUTH off for the tenant or the mailbox
    "basic authentication is disabled",      // passwords off: OAuth2 only
    "security defaults policy",              // Entra ID security defaults block basic auth
    "did not meet the criteria",             // a conditional access policy
};

// What Gmail and Outlook.com put in the NO of an IMAP login refused by policy.
constexpr std::array<std::string_view, 4> kImapPolicy{
    "Application-specific password required",  // Gmail, 2-Step Verification on
    "log in via your web browser",             // Gmail: the sign-in was blocked
    "Web login required",                      // Gmail, with [WEBALERT]
    "Basic authentication is disabled",        // Outlook.com
};

}  // namespace

FailureReason smtp_auth_refusal(const smtp::Reply& reply) {
    // RFC 4954 6: 534 is "Authentication mechanism is too weak", whatever the credentials.
    if (reply.code == 534) return FailureReason::auth_disabled;
    if (!reply.enhanced || reply.enhanced->subject != 7) return FailureReason::auth_rejected;
    switch (reply.enhanced->detail) {
        case 9:   // RFC 4954: mechanism too weak (Gmail: application-specific password required)
        case 14:  // Gmail: "Please log in via your web browser"
        case 30:  // Microsoft: "Basic authentication is not supported for Client Submission"
            return FailureReason::auth_disabled;
        case 139: {
            const bool policy =
                std::any_of(reply.lines.begin(), reply.lines.end(), [](const std::string& line) {
                    return contains_any_ignoring_case(line, kMicrosoftPolicy);
                });
            return policy ? FailureReason::auth_disabled : FailureReason::auth_rejected;
        }
        default:
            return FailureReason::auth_rejected;
    }
}

FailureReason imap_login_refusal(std::string_view code, std::string_view text) {
    const std::string_view code_name = code.substr(0, code.find(' '));
    // RFC 5530: UNAVAILABLE is the authentication service failing, not the credentials.
    if (iequals(code_name, "UNAVAILABLE")) return FailureReason::auth_tempfail;
    if (iequals(code_name, "WEBALERT")) return FailureReason::auth_disabled;  // Gmail
    if (contains_any_ignoring_case(text, kImapPolicy)) return FailureReason::auth_disabled;
    return FailureReason::auth_rejected;
}

}  // namespace mailcanary
