// A login's configuration: the user, the mechanism, and where its secret comes from.
#pragma once

#include <string>

namespace mailcanary {

enum class AuthMechanism { automatic, plain, login, cram_md5, xoauth2, oauthbearer };

// SMTP AUTH credentials from exactly one source: password_env, password_file, token_file or the
// OAuth2 refresh-token flow (token_url and the fields after it; token_url is then never empty).
// The secret itself is never part of the configuration.
struct AuthConfig {
    std::string username;
    std::string password_env;  // name of an environment variable that holds the password
    // Absolute path; the file's content is the password (trailing CR/LF trimmed).
    std::string password_file;
    // Absolute path; an OAuth2 access token kept fresh by something else, read at every run.
    std::string token_file;
    AuthMechanism mechanism = AuthMechanism::automatic;
    // OAuth2 refresh-token flow (RFC 6749 6): the agent gets access tokens itself.
    std::string token_url;  // https:// token endpoint
    std::string client_id;
    std::string client_secret_file;  // absolute path; optional (public clients have none)
    // Absolute path; the refresh token (the agent writes back a rotated one).
    std::string refresh_token_file;
    std::string scope;  // optional, e.g. "https://mail.google.com/"
    // Absolute path; optional: trust anchors for the token endpoint (default: system store).
    std::string token_ca_file;

    bool operator==(const AuthConfig&) const = default;
};

}  // namespace mailcanary
