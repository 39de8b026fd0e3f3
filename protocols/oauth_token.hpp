// OAuth2 access tokens from a refresh token (RFC 6749 6), for XOAUTH2 and OAUTHBEARER. The
// HTTPS exchange uses libcurl on a worker thread, so the agent's event loop never blocks, and
// a token is reused until shortly before it expires.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

struct OAuthSettings {
    std::string token_url;
    std::string client_id;
    std::string client_secret_file;  // empty: a public client
    std::string refresh_token_file;
    std::string scope;
    std::string ca_file;  // empty: the system trust store
};

struct TokenResponse {
    std::string access_token;
    std::chrono::seconds expires_in{3600};  // RFC 6749 5.1 makes it optional: assume an hour
    std::string refresh_token;              // set when the server rotates it
};

// The token endpoint's JSON answer (RFC 6749 5.1, 5.2). An error names the server's `error` and
// `error_description`, never a token.
std::optional<TokenResponse> parse_token_response(long http_status, std::string_view body,
                                                  std::string& error);

// One blocking exchange with the token endpoint; `timeout` bounds it.
std::optional<TokenResponse> request_token(const OAuthSettings& settings,
                                           const std::string& refresh_token,
                                           std::chrono::milliseconds timeout, std::string& error);

// Shared by the runs of one target; used on the agent's event loop only.
class OAuthTokenSource {
  public:
    explicit OAuthTokenSource(OAuthSettings settings);

    // A current access token, fetched when none is cached or it expires within a minute; an
    // empty optional and `error` when it cannot be had by `deadline`.
    boost::asio::awaitable<std::optional<std::string>> token(
        std::chrono::steady_clock::time_point deadline, std::string& error);

    static constexpr auto kRefreshMargin = std::chrono::seconds(60);

  private:
    OAuthSettings settings_;
    std::string access_token_;
    std::chrono::steady_clock::time_point expires_at_{};
};

}  // namespace mailcanary
