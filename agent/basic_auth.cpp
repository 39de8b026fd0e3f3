#include "agent/basic_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "protocols/sasl.hpp"

namespace mailcanary {
namespace {

// Compared with when the user is unknown, so that an unknown user costs a bcrypt like a known
// one (cost 10, as htpasswd -B makes by default; its password is of no use to anyone).
constexpr char kUnknownUserHash[] = "$2b$10$HOlLUQuy1N2AmOCs73WQ1OS162hlr4j.9bokQlixsBs4GEEb3MvmG";

bool is_bcrypt_alphabet(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '/';
}

const std::string kUnknownUserHashText = kUnknownUserHash;

// Each part after its length, so that no two different triples digest the same bytes.
std::array<unsigned char, 32> cache_key(std::string_view user, std::string_view hash,
                                        std::string_view password) {
    std::string bytes;
    for (const std::string_view part : {user, hash, password}) {
        bytes += std::to_string(part.size()) + ":";
        bytes += part;
    }
    std::array<unsigned char, 32> digest{};
    EVP_Digest(bytes.data(), bytes.size(), digest.data(), nullptr, EVP_sha256(), nullptr);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return digest;
}

}  // namespace

std::optional<std::string> bcrypt_hash_problem(std::string_view hash) {
    static constexpr std::string_view kFormat =
        "expected a bcrypt hash such as htpasswd -nBC 10 \"\" makes: $2y$10$ and 53 characters";
    const std::string_view prefix = hash.substr(0, 4);
    if (prefix != "$2a$" && prefix != "$2b$" && prefix != "$2y$") return std::string(kFormat);
    if (hash.size() != 60 || hash[6] != '$') return std::string(kFormat);
    const std::string_view cost = hash.substr(4, 2);
    if (cost < "04" || cost > "31" || cost[0] < '0' || cost[1] < '0' || cost[1] > '9')
        return "bcrypt cost " + std::string(cost) + " is not from 04 to 31";
    if (!std::all_of(hash.begin() + 7, hash.end(), is_bcrypt_alphabet)) return std::string(kFormat);
    return std::nullopt;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool bcrypt_matches(std::string_view password, const std::string& hash) {
    // crypt_r reads a C string: a password with a NUL in it cannot be the one that was hashed.
    if (password.find('\0') != std::string_view::npos) return false;
    const std::string password_text(password);
    auto data = std::make_unique<crypt_data>();  // tens of kilobytes: not on a coroutine's stack
    const char* computed = crypt_r(password_text.c_str(), hash.c_str(), data.get());
    // libcrypt answers a setting it cannot use with null or a string starting with '*'.
    if (computed == nullptr || computed[0] == '*') return false;
    return equal_in_constant_time(computed, hash);
}

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header_value) {
    const auto space = header_value.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    std::string scheme(header_value.substr(0, space));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "basic") return std::nullopt;
    std::string_view encoded = header_value.substr(space + 1);
    while (encoded.starts_with(' ')) encoded.remove_prefix(1);
    const auto decoded = sasl::base64_decode(encoded);
    if (!decoded) return std::nullopt;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

BasicAuth::BasicAuth(std::map<std::string, std::string, std::less<>> users)
    : users_(std::move(users)) {}

bool BasicAuth::allows(std::string_view authorization) const {
    const auto credentials = parse_basic_authorization(authorization);
    if (!credentials) return false;
    const auto user = users_.find(credentials->user);
    const bool known = user != users_.end();
    const std::string& hash = known ? user->second : kUnknownUserHashText;
    const CacheKey key = cache_key(credentials->user, hash, credentials->password);
    if (known && cached(key)) return true;
    const bool matches = bcrypt_matches(credentials->password, hash);
    {
        std::lock_guard lock(mutex_);
        ++bcrypt_runs_;
    }
    if (!known || !matches) return false;
    remember(key);
    return true;
}

bool BasicAuth::cached(const CacheKey& key) const {
    std::lock_guard lock(mutex_);
    return std::find(verified_.begin(), verified_.end(), key) != verified_.end();
}

void BasicAuth::remember(const CacheKey& key) const {
    std::lock_guard lock(mutex_);
    if (std::find(verified_.begin(), verified_.end(), key) != verified_.end()) return;
    if (verified_.size() == kCacheCapacity) verified_.pop_front();
    verified_.push_back(key);
}

std::size_t BasicAuth::bcrypt_runs() const {
    std::lock_guard lock(mutex_);
    return bcrypt_runs_;
}

}  // namespace mailcanary
