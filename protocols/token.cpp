#include "protocols/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace mailcanary {
namespace {

constexpr std::string_view kTokenVersion = "mc1";
constexpr std::size_t kRunIdBytes = 16;
constexpr std::size_t kMacBytes = 16;  // truncated HMAC-SHA256: 128 bits are plenty to forge-proof

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

std::string mac_of(std::string_view run_id, std::string_view secret) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(run_id.data()), run_id.size(), digest.data(),
         &length);
    return hex(digest.data(), kMacBytes);
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

std::string_view token_run_id(std::string_view token) {
    const auto prefix_size = kTokenVersion.size() + 1;
    return token.size() > prefix_size ? token.substr(prefix_size, kRunIdBytes * 2) : token;
}

}  // namespace mailcanary
