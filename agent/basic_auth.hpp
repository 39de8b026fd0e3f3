// HTTP Basic authentication against bcrypt hashes (basic_auth_users of the web configuration),
// as exporter-toolkit does it: a verified password is cached, so that a scrape every few
// seconds does not pay bcrypt's deliberate cost (tens of milliseconds) each time.
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

// Whether `hash` is a bcrypt hash libcrypt verifies: "$2a$", "$2b$" or "$2y$", a cost from 04
// to 31, 53 characters of salt and digest. Otherwise returns why not.
std::optional<std::string> bcrypt_hash_problem(std::string_view hash);

// bcrypt of `password` with the salt and cost of `hash`, compared with `hash` in constant time.
bool bcrypt_matches(std::string_view password, const std::string& hash);

// Equal contents, in a time that depends only on the lengths.
bool equal_in_constant_time(std::string_view a, std::string_view b);

// The user name and password of an "Authorization: Basic ..." header value.
struct BasicCredentials {
    std::string user;
    std::string password;
};
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header_value);

class BasicAuth {
  public:
    static constexpr std::size_t kCacheCapacity = 100;

    // User name -> bcrypt hash, each already checked with bcrypt_hash_problem.
    explicit BasicAuth(std::map<std::string, std::string, std::less<>> users);

    // Whether the Authorization header value names a user with the right password. Costs a
    // bcrypt unless this user's password was verified before; an unknown user costs one too,
    // so that the time does not tell which users exist. Thread-safe.
    bool allows(std::string_view authorization) const;

    // How many bcrypt computations ran: lets a test see the cache at work.
    std::size_t bcrypt_runs() const;

  private:
    using CacheKey = std::array<unsigned char, 32>;  // SHA-256 of user, hash and password
    bool cached(const CacheKey& key) const;
    void remember(const CacheKey& key) const;

    std::map<std::string, std::string, std::less<>> users_;
    mutable std::mutex mutex_;
    // Verified (user, hash, password) digests, the oldest evicted first: a wrong password is
    // never cached, so guessing always pays bcrypt.
    mutable std::deque<CacheKey> verified_;
    mutable std::size_t bcrypt_runs_ = 0;
};

}  // namespace mailcanary
