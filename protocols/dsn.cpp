#include "protocols/dsn.hpp"

#include <algorithm>
#include <utility>

#include "common/text.hpp"

namespace mailcanary {
namespace {

// Gateways wrap a report in a multipart/mixed (a disclaimer beside it), rarely deeper.
constexpr int kMaxNesting = 3;

struct ContentType {
    std::string media_type;  // lower case, e.g. "multipart/report"
    std::vector<std::pair<std::string, std::string>> parameters;  // names lower case

    std::string parameter(std::string_view name) const {
        for (const auto& [key, value] : parameters) {
            if (key == name) return value;
        }
        return {};
    }
};

// A Content-Type value (RFC 2045 5.1): type/subtype, then ";"-separated name=value pairs, a value
// a token or a quoted string (with backslash escapes). Without the field, text/plain (RFC 2045).
ContentType content_type_of(const std::vector<HeaderField>& fields) {
    const auto values = header_values(fields, "Content-Type");
    if (values.empty()) return {"text/plain", {}};
    std::string_view rest = values.front();
    const auto semicolon = rest.find(';');
    ContentType type{to_lower(trim(rest.substr(0, semicolon))), {}};
    rest = semicolon == std::string_view::npos ? std::string_view{} : rest.substr(semicolon + 1);
    while (!rest.empty()) {
        const auto equals = rest.find('=');
        if (equals == std::string_view::npos) break;
        std::string name = to_lower(trim(rest.substr(0, equals)));
        rest = trim(rest.substr(equals + 1));
        std::string value;
        if (!rest.empty() && rest.front() == '"') {
            std::size_t at = 1;
            for (; at < rest.size() && rest[at] != '"'; ++at) {
                if (rest[at] == '\\' && at + 1 < rest.size()) ++at;
                value += rest[at];
            }
            rest.remove_prefix(std::min(at + 1, rest.size()));
            const auto next = rest.find(';');
            rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        } else {
            const auto next = rest.find(';');
            value = std::string(trim(rest.substr(0, next)));
            rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        }
        type.parameters.emplace_back(std::move(name), std::move(value));
    }
    return type;
}

// The line break before a delimiter belongs to the delimiter, not to the part (RFC 2046 5.1.1).
std::string_view without_last_line_break(std::string_view part) {
    if (part.ends_with('\n')) part.remove_suffix(1);
    if (part.ends_with('\r')) part.remove_suffix(1);
    return part;
}

// The body parts of a multipart body (RFC 2046 5.1.1), each with its own header: the text
// between delimiter lines "--boundary" (trailing whitespace allowed), up to "--boundary--". A
// body cut before its close delimiter gives the parts it has.
std::vector<std::string_view> multipart_parts(std::string_view body, std::string_view boundary) {
    std::vector<std::string_view> parts;
    if (boundary.empty()) return parts;
    const std::string delimiter = "--" + std::string(boundary);
    std::optional<std::size_t> part_start;
    for (std::size_t at = 0; at < body.size();) {
        const auto newline = body.find('\n', at);
        const std::size_t line_end = newline == std::string_view::npos ? body.size() : newline;
        const std::string_view line = trim(body.substr(at, line_end - at));
        const std::size_t next = newline == std::string_view::npos ? body.size() : newline + 1;
        if (line.starts_with(delimiter)) {
            const std::string_view after = line.substr(delimiter.size());
            const bool close = after == "--";
            if (after.empty() || close) {
                if (part_start)
                    parts.push_back(
                        without_last_line_break(body.substr(*part_start, at - *part_start)));
                if (close) return parts;
                part_start = next;
            }
        }
        at = next;
    }
    if (part_start) parts.push_back(body.substr(*part_start));
    return parts;
}

// "rfc822; someone@example.com" -> "someone@example.com" (the type is RFC 3464's
// address-type, mta-name-type or diagnostic-type).
std::string without_type(std::string_view value) {
    const auto semicolon = value.find(';');
    return std::string(
        trim(semicolon == std::string_view::npos ? value : value.substr(semicolon + 1)));
}

// An RFC 3463 status code: class.subject.detail, class 2, 4 or 5, then 1 to 3 digits each.
bool is_status_code(std::string_view code) {
    if (code.size() < 5 || (code[0] != '2' && code[0] != '4' && code[0] != '5') || code[1] != '.') {
        return false;
    }
    code.remove_prefix(2);
    for (int field = 0; field < 2; ++field) {
        std::size_t digits = 0;
        while (digits < code.size() && code[digits] >= '0' && code[digits] <= '9') ++digits;
        if (digits == 0 || digits > 3) return false;
        code.remove_prefix(digits);
        if (field == 0) {
            if (code.empty() || code.front() != '.') return false;
            code.remove_prefix(1);
        }
    }
    return code.empty();
}

std::string first_value(const std::vector<HeaderField>& fields, std::string_view name) {
    const auto values = header_values(fields, name);
    return values.empty() ? std::string() : values.front();
}

std::string first_word(std::string_view text) {
    text = trim(text);
    const auto end = std::find_if(text.begin(), text.end(),
                                  [](char c) { return c == ' ' || c == '\t' || c == '('; });
    return std::string(text.substr(0, static_cast<std::size_t>(end - text.begin())));
}

// The per-message block and the per-recipient blocks of a message/delivery-status body (RFC 3464
// 2.1), separated by empty lines. A block with an Action or a Final-Recipient is a recipient's,
// also where a sender left the per-message block out.
void read_status_blocks(std::string_view body, DeliveryStatusNotification& report) {
    while (!body.empty()) {
        const auto fields = parse_header_block(body);
        const std::string_view next = message_body(body);
        if (!header_values(fields, "Final-Recipient").empty() ||
            !header_values(fields, "Action").empty()) {
            RecipientStatus recipient;
            recipient.final_recipient = without_type(first_value(fields, "Final-Recipient"));
            recipient.action = to_lower(first_word(first_value(fields, "Action")));
            recipient.status = first_word(first_value(fields, "Status"));
            if (!is_status_code(recipient.status)) recipient.status.clear();
            recipient.diagnostic_code = first_value(fields, "Diagnostic-Code");
            recipient.remote_mta = without_type(first_value(fields, "Remote-MTA"));
            report.recipients.push_back(std::move(recipient));
        } else if (report.reporting_mta.empty()) {
            report.reporting_mta = without_type(first_value(fields, "Reporting-MTA"));
        }
        if (next.size() >= body.size()) break;
        body = next;
    }
}

bool is_one_of(std::string_view type, std::initializer_list<std::string_view> types) {
    return std::find(types.begin(), types.end(), type) != types.end();
}

std::optional<DeliveryStatusNotification> find_report(const std::vector<HeaderField>& header,
                                                      std::string_view body, int depth) {
    const ContentType type = content_type_of(header);
    if (depth > kMaxNesting || !type.media_type.starts_with("multipart/")) return std::nullopt;
    const auto parts = multipart_parts(body, type.parameter("boundary"));
    const bool is_report = type.media_type == "multipart/report" &&
                           iequals(type.parameter("report-type"), "delivery-status");
    if (!is_report) {
        for (const auto part : parts) {
            if (auto report =
                    find_report(parse_header_block(part), message_body(part), depth + 1)) {
                return report;
            }
        }
        return std::nullopt;
    }
    DeliveryStatusNotification report;
    for (const auto part : parts) {
        const auto part_header = parse_header_block(part);
        const std::string part_type = content_type_of(part_header).media_type;
        if (is_one_of(part_type, {"message/delivery-status", "message/global-delivery-status"})) {
            read_status_blocks(message_body(part), report);
        } else if (is_one_of(part_type, {"message/rfc822", "message/global", "text/rfc822-headers",
                                         "message/global-headers"}) &&
                   report.returned_header.empty()) {
            report.returned_header = parse_header_block(message_body(part));
        }
    }
    if (report.recipients.empty()) return std::nullopt;
    return report;
}

}  // namespace

const RecipientStatus* DeliveryStatusNotification::first_failure() const {
    const auto failed = std::find_if(recipients.begin(), recipients.end(),
                                     [](const RecipientStatus& r) { return r.action == "failed"; });
    return failed == recipients.end() ? nullptr : &*failed;
}

std::optional<DeliveryStatusNotification> parse_delivery_status_notification(
    std::string_view message) {
    return find_report(parse_header_block(message), message_body(message), 0);
}

}  // namespace mailcanary
