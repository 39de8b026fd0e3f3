#include "protocols/credential_source.hpp"

#include <cstdlib>

#include "protocols/credentials.hpp"
#include "protocols/oauth_token.hpp"

namespace mailcanary {

std::optional<CredentialSource> CredentialSource::load(const AuthConfig& auth,
                                                       std::string& problem) {
    CredentialSource source;
    if (!auth.password_file.empty()) {
        auto password = read_secret_file(auth.password_file, problem);
        if (!password) return std::nullopt;
        source.password_ = std::move(*password);
        source.identity_ = "password\n" + source.password_;
    } else if (!auth.password_env.empty()) {
        const char* value = std::getenv(auth.password_env.c_str());
        if (value == nullptr || *value == '\0') {
            problem = "environment variable " + auth.password_env + " is not set or empty";
            return std::nullopt;
        }
        source.password_ = value;
        source.identity_ = "password\n" + source.password_;
    } else if (!auth.token_url.empty()) {
        source.oauth_ = std::make_shared<OAuthTokenSource>(
            OAuthSettings{.token_url = auth.token_url,
                          .client_id = auth.client_id,
                          .client_secret_file = auth.client_secret_file,
                          .refresh_token_file = auth.refresh_token_file,
                          .scope = auth.scope,
                          .ca_file = auth.token_ca_file});
        // Not the token source itself: each load makes a new one for the same flow.
        source.identity_ =
            "oauth2\n" + auth.token_url + "\n" + auth.client_id + "\n" + auth.refresh_token_file;
    } else {
        source.token_file_ = auth.token_file;
        source.identity_ = "token_file\n" + auth.token_file;
    }
    return source;
}

boost::asio::awaitable<std::optional<CredentialSource::Secret>> CredentialSource::secret(
    std::chrono::steady_clock::time_point deadline, std::string& error) const {
    if (oauth_) {
        auto token = co_await oauth_->token(deadline, error);
        if (!token) co_return std::nullopt;
        co_return Secret{std::move(*token), true};
    }
    if (!token_file_.empty()) {
        auto token = read_secret_file(token_file_, error);
        if (!token) co_return std::nullopt;
        co_return Secret{std::move(*token), true};
    }
    co_return Secret{password_, false};
}

}  // namespace mailcanary
