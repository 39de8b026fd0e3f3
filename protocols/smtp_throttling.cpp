#include "protocols/smtp_throttling.hpp"

#include <array>
#include <string_view>

#include "common/text.hpp"

namespace mailcanary::smtp {
namespace {

// How servers name the rate they hold the client to, in their own words.
constexpr std::array<std::string_view, 12> kRateWords{
    "too many connections",       // Postfix anvil (4.7.0), Exim, sendmail
    "too many concurrent",        // Exim's smtp_accept_max_per_host
    "too many new tls sessions",  // Postfix smtpd_client_new_tls_session_rate_limit
    "too much mail",              // Postfix smtpd_client_message_rate_limit (450 4.7.1)
    "too many messages",          // Microsoft, Yahoo
    "too many auth commands",     // Postfix smtpd_client_auth_rate_limit
    "too many login attempts",    // Gmail, 454 4.7.0
    "rate limit",                 // "rate limited", "Connection rate limit exceeded" (sendmail)
    "ratelimit",                  // Exim's ratelimit ACL, as operators word it
    "unusual rate",               // Gmail, 421 4.7.0 and 4.7.28
    "throttl",                    // "throttled", "throttling"
    "unexpected volume",          // Yahoo [TSS04]
};

// Greylisting asks every new sender to come back once; it says nothing about the rate.
constexpr std::array<std::string_view, 3> kGreylistWords{"greylist", "graylist", "grey-list"};
constexpr std::array<std::string_view, 1> kComeBackLater{"try again later"};

bool any_line_contains(const Reply& reply, std::span<const std::string_view> words) {
    for (const std::string& line : reply.lines) {
        if (contains_any_ignoring_case(line, words)) return true;
    }
    return false;
}

// 4.7.28 (RFC 7372's registry: "mail flood detected"; Gmail's "unusual rate of unsolicited
// mail") and 4.7.500 to 4.7.699 (Exchange Online: "Access denied, please try again later";
// 4.7.650 "temporarily rate limited due to IP reputation") mean nothing but rate limiting.
bool rate_limiting_status(const EnhancedStatus& status) {
    if (status.klass != 4 || status.subject != 7) return false;
    return status.detail == 28 || (status.detail >= 500 && status.detail <= 699);
}

}  // namespace

bool throttles(const Reply& reply) {
    if (reply.klass() != 4) return false;
    if (any_line_contains(reply, kGreylistWords)) return false;
    if (reply.enhanced && rate_limiting_status(*reply.enhanced)) return true;
    if (any_line_contains(reply, kRateWords)) return true;
    // Gmail's "421 4.7.0 Try again later, closing connection.": the channel closes for now and
    // no cause is named but the client's (4.7.0 is "other security or policy status").
    const bool no_other_cause = !reply.enhanced || *reply.enhanced == EnhancedStatus{4, 7, 0};
    return reply.code == 421 && no_other_cause && any_line_contains(reply, kComeBackLater);
}

}  // namespace mailcanary::smtp
