#include "protocols/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace mailcanary {
namespace {

constexpr std::string_view kVersion = "mc2";
constexpr std::string_view kLegacyVersion = "mc1";  // no deadline; still recognised
constexpr std::size_t kRunIdBytes = 16;
constexpr std::size_t kMacBytes = 16;  // truncated HMAC-SHA256: 128 bits are plenty to forge-proof
// Unix seconds until the year 33658: more digits are no deadline a sender wrote.
constexpr std::size_t kMaxDeadlineDigits = 12;

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

std::string mac_of(std::string_view signed_text, std::string_view secret) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(),
         digest.data(), &length);
    return hex(digest.data(), kMacBytes);
}

std::vector<std::string_view> fields_of(std::string_view token) {
    std::vector<std::string_view> fields;
    while (true) {
        const auto dot = token.find('.');
        fields.push_back(token.substr(0, dot));
        if (dot == std::string_view::npos) return fields;
        token.remove_prefix(dot + 1);
    }
}

std::optional<std::chrono::system_clock::time_point> parse_deadline(std::string_view digits) {
    if (digits.empty() || digits.size() > kMaxDeadlineDigits ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
        return std::nullopt;
    }
    std::int64_t seconds = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
    return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

}  // namespace

std::string make_token(std::string_view secret, std::chrono::system_clock::time_point deadline) {
    const auto seconds = std::max<std::int64_t>(
        0, std::chrono::ceil<std::chrono::seconds>(deadline.time_since_epoch()).count());
    const std::string signed_text =
        std::string(kVersion) + "." + std::to_string(seconds) + "." + random_hex(kRunIdBytes);
    return signed_text + "." + mac_of(signed_text, secret);
}

std::optional<VerifiedToken> verify_token(std::string_view token, std::string_view secret) {
    const auto fields = fields_of(token);
    VerifiedToken verified;
    if (fields.size() == 4 && fields[0] == kVersion) {
        verified.deadline = parse_deadline(fields[1]);
        if (!verified.deadline) return std::nullopt;
    } else if (fields.size() != 3 || fields[0] != kLegacyVersion) {
        return std::nullopt;
    }
    const auto run_id = fields[fields.size() - 2];
    const auto mac = fields.back();
    if (run_id.size() != kRunIdBytes * 2 || mac.size() != kMacBytes * 2) return std::nullopt;
    // mc1 signed the run id alone; mc2 signs everything before the mac.
    const auto signed_text =
        verified.deadline ? token.substr(0, token.size() - mac.size() - 1) : run_id;
    const std::string expected = mac_of(signed_text, secret);
    if (CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) != 0) return std::nullopt;
    return verified;
}

std::string_view token_run_id(std::string_view token) {
    const auto fields = fields_of(token);
    if (fields.size() == 4 && fields[0] == kVersion) return fields[2];
    if (fields.size() == 3 && fields[0] == kLegacyVersion) return fields[1];
    return token;
}

}  // namespace mailcanary
