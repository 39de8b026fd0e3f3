#include "protocols/imap_throttling.hpp"

#include <array>
#include <charconv>
#include <cstdint>

#include "common/text.hpp"

namespace mailcanary::imap {
namespace {

// What the big providers say when they throttle, in their own words.
constexpr std::array<std::string_view, 4> kThrottlingTexts{
    "Too many simultaneous connections",     // Gmail, past 15 sessions of one account
    "exceeded command or bandwidth limits",  // Gmail, with [OVERQUOTA]
    "Request is throttled",                  // Exchange Online and Outlook.com
    // Dovecot past mail_max_userip_connections, as "NO [UNAVAILABLE] ..."
    "Maximum number of connections from user+IP exceeded",
};

// A hint beyond this is taken as this: an hour is past any backoff seen in public transcripts
// (Microsoft's run to about 5 minutes), and a garbled number must not silence a probe for days.
constexpr std::chrono::milliseconds kLongestHint = std::chrono::hours(1);

// Commands that add to the mailbox: there OVERQUOTA means the storage quota (RFC 5530 3), a full
// mailbox, not a limit on the client's rate.
bool stores_messages(std::string_view command) {
    if (command.size() >= 4 && iequals(command.substr(0, 4), "UID ")) command.remove_prefix(4);
    return iequals(command, "APPEND") || iequals(command, "COPY") || iequals(command, "MOVE");
}

}  // namespace

std::optional<Throttling> throttling(std::string_view code, std::string_view text,
                                     std::string_view command) {
    const std::string_view code_name = code.substr(0, code.find(' '));
    // RFC 5530 3: LIMIT is "an implementation limit of some kind"; on a session it is a limit
    // on sessions or commands. OVERQUOTA outside a command that stores mail is a quota on use:
    // Gmail's daily bandwidth and command limits.
    const bool limited = iequals(code_name, "LIMIT") ||
                         (iequals(code_name, "OVERQUOTA") && !stores_messages(command));
    if (!limited && !contains_any_ignoring_case(text, kThrottlingTexts)) return std::nullopt;
    return Throttling{suggested_backoff(text)};
}

std::optional<std::chrono::milliseconds> suggested_backoff(std::string_view text) {
    constexpr std::string_view kPrefix = "Suggested Backoff Time:";
    const std::size_t at = find_ignoring_case(text, kPrefix);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = text.substr(at + kPrefix.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::uint64_t milliseconds = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), milliseconds);
    if (end == rest.data()) return std::nullopt;
    if (ec == std::errc::result_out_of_range || milliseconds > kLongestHint.count()) {
        return kLongestHint;
    }
    return std::chrono::milliseconds(milliseconds);
}

}  // namespace mailcanary::imap
