// Delivery status notifications (RFC 3464, sent as a multipart/report of RFC 6522): whether a
// message is one, what it says about each recipient, and the header of the message it returns,
// by which a bounce is tied to the probe message that caused it. No I/O; a message that is not a
// well-formed DSN gives nullopt, never an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/mail_headers.hpp"

namespace mailcanary {

// One per-recipient block of the report (RFC 3464 2.3).
struct RecipientStatus {
    std::string final_recipient;  // the address, without its address type ("rfc822;")
    std::string action;           // failed, delayed, delivered, relayed or expanded; lower case
    std::string status;           // the status code, e.g. "5.1.1"; empty when not well-formed
    std::string diagnostic_code;  // as given, e.g. "smtp; 550 5.1.1 User unknown"; may be empty
    std::string remote_mta;       // without its type ("dns;"); may be empty

    bool operator==(const RecipientStatus&) const = default;
};

struct DeliveryStatusNotification {
    std::string reporting_mta;  // without its type ("dns;")
    std::vector<RecipientStatus> recipients;
    // The header of the message the report returns (a message/rfc822 part, or its header alone
    // in text/rfc822-headers); empty when the report returns nothing.
    std::vector<HeaderField> returned_header;

    // The first recipient whose delivery failed for good (action "failed"); null when none did,
    // as in a report that delivery is only delayed.
    const RecipientStatus* first_failure() const;
};

// The report in a whole message (header and body, CRLF or LF line ends): a multipart/report with
// report-type delivery-status, at the top or inside a multipart/mixed (as some gateways wrap it),
// whose message/delivery-status part has at least one recipient block. The UTF-8 forms of RFC
// 6533 (message/global-delivery-status, message/global, message/global-headers) count as well.
// Parts are read as they are sent (7bit or 8bit, as RFC 6522 asks for the report and RFC 2046 for
// message/*): a base64 part is not decoded.
std::optional<DeliveryStatusNotification> parse_delivery_status_notification(
    std::string_view message);

}  // namespace mailcanary
