// Where a login's secret comes from, the same for SMTP AUTH and IMAP: a password read once at
// load (from the environment or a file), an access token file read at every use (something
// else keeps it fresh), or an access token from the OAuth2 refresh-token flow.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "protocols/auth_config.hpp"

namespace mailcanary {

class OAuthTokenSource;

class CredentialSource {
  public:
    // Reads the password now when there is one. Empty, with `problem`, when it cannot be had.
    static std::optional<CredentialSource> load(const AuthConfig& auth, std::string& problem);

    struct Secret {
        std::string value;
        bool is_token = false;  // an OAuth2 bearer token rather than a password
    };
    // The secret for one login; empty, with `error` (never the secret), when it cannot be had
    // by `deadline`. Shares the refresh flow's cached token between uses.
    boost::asio::awaitable<std::optional<Secret>> secret(
        std::chrono::steady_clock::time_point deadline, std::string& error) const;

    // Equal for two sources that log in the same way with the same secret (the mailbox
    // tracker shares one session between such targets).
    const std::string& identity() const { return identity_; }

  private:
    std::string password_;
    std::string token_file_;
    std::shared_ptr<OAuthTokenSource> oauth_;
    std::string identity_;
};

}  // namespace mailcanary
