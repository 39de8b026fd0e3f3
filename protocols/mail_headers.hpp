// What the headers of a delivered probe message say: the header block fetched over IMAP cut into
// fields, the SPF/DKIM/DMARC verdicts of Authentication-Results (RFC 8601), and the delivery
// time by the Received dates (RFC 5322 3.3). No I/O; bad input gives no result, never an error.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary {

// One header field, unfolded: the line breaks of folding are gone, the value is trimmed.
struct HeaderField {
    std::string name;  // as written
    std::string value;

    bool operator==(const HeaderField&) const = default;
};

// The fields of a header block (CRLF or LF line ends, folded lines), top to bottom. It ends at
// the first empty line; lines that are not fields are skipped.
std::vector<HeaderField> parse_header_block(std::string_view block);

// What follows a message's header block: the text after its first empty line (CRLF or LF); empty
// when there is none.
std::string_view message_body(std::string_view message);

// Values of every field with this name (case-insensitive), top to bottom.
std::vector<std::string> header_values(const std::vector<HeaderField>& fields,
                                       std::string_view name);

enum class AuthMethod { spf, dkim, dmarc };

std::string_view to_string(AuthMethod method);

// The result values a method can have (RFC 8601 2.7.1-2.7.2, RFC 7489 11.2), as lower-case RFC
// tokens: a bounded set, fit for a metric label.
std::span<const std::string_view> results_for(AuthMethod method);

// A verdict is one of results_for(method), or unset when the header says nothing about the method
// or gives a value outside that set, so nothing unbounded is ever exported.
struct AuthVerdicts {
    std::optional<std::string> spf;
    std::optional<std::string> dkim;
    std::optional<std::string> dmarc;

    bool operator==(const AuthVerdicts&) const = default;
};

inline constexpr std::array kAuthMethods = {AuthMethod::spf, AuthMethod::dkim, AuthMethod::dmarc};
// The member of AuthVerdicts that holds the method's verdict.
std::optional<std::string> AuthVerdicts::*verdict_member(AuthMethod method);

struct ParsedAuthResults {
    std::string authserv_id;  // as written; empty when the server left it out (Microsoft 365)
    AuthVerdicts verdicts;

    bool operator==(const ParsedAuthResults&) const = default;
};

// One Authentication-Results value (RFC 8601 2.2): authserv-id [version], then ";"-separated
// "method[/version]=result [reason=...] [ptype.property=value ...]", comments anywhere. Methods
// other than SPF, DKIM and DMARC, and results that are not well-formed, are ignored. Results are
// matched case-insensitively; SPF's historic "hardfail" (RFC 5451) is "fail". When a method
// appears more than once (a message with two DKIM signatures), "pass" wins, since one passing
// signature authenticates the message; otherwise the first counts. nullopt when the value is
// unusable: no authserv-id, or a comment or quoted string never closed (a truncated header).
std::optional<ParsedAuthResults> parse_authentication_results(std::string_view value);

// Whether an authserv-id is the trusted one: equal without regard to ASCII case, or, for a
// trusted "*.mail.yahoo.com", any id ending in ".mail.yahoo.com" (Yahoo names the host).
bool authserv_id_matches(std::string_view id, std::string_view trusted);

// The authserv-ids of a message's usable Authentication-Results headers, top to bottom; "" for
// one written without (Microsoft 365, Outlook.com).
std::vector<std::string> authserv_ids(const std::vector<HeaderField>& fields);

// The verdicts for a message. Anyone can write an Authentication-Results header into a message,
// so only one server's count: with a trusted_authserv_id, the topmost header that matches it
// (authserv_id_matches); without one, the topmost header, which the receiving server adds above
// any that came with the message. The headers of the same authserv-id directly below it count
// with it: a server may split its results (a "pass" then wins, as within one header).
AuthVerdicts message_verdicts(const std::vector<HeaderField>& fields,
                              std::string_view trusted_authserv_id);

// An RFC 5322 3.3 date-time in UTC. Tolerates the obsolete forms (no day of the week, 2- and
// 3-digit years, zone names such as GMT or PST, comments) and the month before the day ("Feb 15
// 2002", as in RFC 8601's examples). nullopt if the text is not a date, or one after 2262, which
// the clock cannot hold.
std::optional<std::chrono::system_clock::time_point> parse_rfc5322_date(std::string_view text);

// How long delivery took by the servers' own clocks: the date of the topmost Received field (after
// its last ";") minus that of the bottom-most. nullopt with fewer than two dated Received fields
// or when the difference is negative. Whole seconds, and the servers' clocks may disagree: a
// secondary figure beside the agent's own measurement.
std::optional<std::chrono::seconds> received_span(const std::vector<HeaderField>& fields);

}  // namespace mailcanary
