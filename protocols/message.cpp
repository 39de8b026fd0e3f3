#include "protocols/message.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <ctime>
#include <stdexcept>

namespace mailcanary {
namespace {

std::string hex(const unsigned char* bytes, std::size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out += kHex[bytes[i] >> 4];
        out += kHex[bytes[i] & 15];
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    std::array<unsigned char, 32> buffer{};
    if (bytes > buffer.size() || RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
        throw std::runtime_error("no randomness for the probe token");
    }
    return hex(buffer.data(), bytes);
}

constexpr std::string_view kTokenVersion = "mc1";
constexpr std::size_t kRunIdBytes = 16;
constexpr std::size_t kMacBytes = 16;  // truncated HMAC-SHA256: 128 bits are plenty to forge-proof

std::string mac_of(std::string_view run_id, std::string_view secret) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(run_id.data()), run_id.size(), digest.data(),
         &length);
    return hex(digest.data(), kMacBytes);
}

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

}  // namespace

std::string make_token(std::string_view secret) {
    const std::string run_id = random_hex(kRunIdBytes);
    return std::string(kTokenVersion) + "." + run_id + "." + mac_of(run_id, secret);
}

bool verify_token(std::string_view token, std::string_view secret) {
    const std::size_t run_id_size = kRunIdBytes * 2;
    const std::size_t expected_size = kTokenVersion.size() + 1 + run_id_size + 1 + kMacBytes * 2;
    if (token.size() != expected_size || !token.starts_with(kTokenVersion) ||
        token[kTokenVersion.size()] != '.' ||
        token[kTokenVersion.size() + 1 + run_id_size] != '.') {
        return false;
    }
    const auto run_id = token.substr(kTokenVersion.size() + 1, run_id_size);
    const auto mac = token.substr(token.size() - kMacBytes * 2);
    const std::string expected = mac_of(run_id, secret);
    return CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) == 0;
}

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
    const auto prefix_size = kTokenVersion.size() + 1;
    const std::string run_id = spec.token.size() > prefix_size
                                   ? spec.token.substr(prefix_size, kRunIdBytes * 2)
                                   : spec.token;
    return run_id + ".mailcanary@" + spec.message_id_domain;
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
    message += "It is deleted automatically; if you can read it, something kept it.\r\n";
    return dot_stuff(message) + ".\r\n";
}

std::optional<std::string> queue_id_from_reply(std::string_view text) {
    for (const std::string_view marker :
         {std::string_view("queued as "), std::string_view("id=")}) {
        const auto at = text.find(marker);
        if (at == std::string_view::npos) continue;
        std::size_t end = at + marker.size();
        while (end < text.size() &&
               (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-')) {
            ++end;
        }
        if (end > at + marker.size())
            return std::string(text.substr(at + marker.size(), end - at - marker.size()));
    }
    return std::nullopt;
}

}  // namespace mailcanary
