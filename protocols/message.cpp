#include "protocols/message.hpp"

#include "protocols/token.hpp"

#include <array>
#include <ctime>
#include <stdexcept>

namespace mailcanary {
namespace {

// RFC 5322 3.3 date-time, in UTC: "Sun, 29 Nov 2026 07:31:02 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point now) {
    const auto time = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&time, &utc);
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char text[64];
    std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[utc.tm_wday],
                  utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                  utc.tm_sec);
    return text;
}

// Header values come from the configuration, which refuses line breaks; this keeps a header to
// one line whatever it holds, so nothing can be injected.
std::string one_line(std::string_view value) {
    std::string out;
    for (const char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

// Only what is true: the accept probe leaves its message where it lands.
std::string_view after_delivery_text(AfterDelivery after_delivery) {
    switch (after_delivery) {
        case AfterDelivery::removed:
            return "mailcanary removes it from this folder once it has seen it arrive; if you "
                   "can\r\n"
                   "read it here, something kept it.\r\n";
        case AfterDelivery::trashed:
            return "mailcanary moves it to the trash once it has seen it arrive; if you can "
                   "read\r\n"
                   "it here, something kept it.\r\n";
        case AfterDelivery::kept:
            break;
    }
    return "The probe that sent it does not delete it; it may be deleted by hand.\r\n";
}

}  // namespace

std::string dot_stuff(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    bool line_start = true;
    for (const char c : text) {
        if (line_start && c == '.') out += '.';
        out += c;
        line_start = c == '\n';
    }
    return out;
}

std::string message_id(const MessageSpec& spec) {
    return message_id(spec.token, spec.message_id_domain);
}

std::string message_id(std::string_view token, std::string_view domain) {
    return std::string(token_run_id(token)) + ".mailcanary@" + std::string(domain);
}

std::string compose_message(const MessageSpec& spec, std::chrono::system_clock::time_point now) {
    std::string message;
    const auto header = [&](std::string_view name, std::string_view value) {
        message += name;
        message += ": ";
        message += one_line(value);
        message += "\r\n";
    };
    header("Date", rfc5322_date(now));
    header("Message-ID", "<" + message_id(spec) + ">");
    header("From", "<" + spec.from + ">");
    header("To", "<" + join(spec.to, ">, <") + ">");
    header("Subject", spec.subject);
    header("MIME-Version", "1.0");
    header("Content-Type", "text/plain; charset=us-ascii");
    header("Content-Transfer-Encoding", "7bit");
    header("Auto-Submitted", "auto-generated");  // RFC 3834: nobody should auto-reply to a probe
    header("X-Mailcanary-Token", spec.token);
    for (const auto& [name, value] : spec.headers) header(name, value);
    message += "\r\n";
    message += "This is a synthetic test message sent by mailcanary to check that mail flows.\r\n";
    message += after_delivery_text(spec.after_delivery);
    return dot_stuff(message) + ".\r\n";
}

}  // namespace mailcanary
