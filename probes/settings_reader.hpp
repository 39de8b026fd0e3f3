// Reads the settings several probe kinds share, with the same located errors everywhere: TLS
// options, a login's credentials, the probe message. The schema (agent/config.cpp) and the
// probe kinds' own table readers both use it.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/toml_reader.hpp"
#include "probes/target_config.hpp"
#include "protocols/auth_config.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary {

inline constexpr std::array<Choice<TlsMode>, 3> kTlsModes{{
    {"none", TlsMode::none},
    {"starttls", TlsMode::starttls},
    {"implicit", TlsMode::implicit},
}};

inline constexpr std::array<Choice<AuthMechanism>, 6> kAuthMechanisms{{
    {"auto", AuthMechanism::automatic},
    {"plain", AuthMechanism::plain},
    {"login", AuthMechanism::login},
    {"cram-md5", AuthMechanism::cram_md5},
    {"xoauth2", AuthMechanism::xoauth2},
    {"oauthbearer", AuthMechanism::oauthbearer},
}};

// IMAP has no CRAM-MD5 here: the roundtrip probe does not implement it.
inline constexpr std::array<Choice<AuthMechanism>, 5> kImapMechanisms{{
    {"auto", AuthMechanism::automatic},
    {"plain", AuthMechanism::plain},
    {"login", AuthMechanism::login},
    {"xoauth2", AuthMechanism::xoauth2},
    {"oauthbearer", AuthMechanism::oauthbearer},
}};

// The SASL mechanisms a protocol's probe can log in with.
struct SaslProfile {
    std::string_view protocol;
    std::span<const Choice<AuthMechanism>> mechanisms;
};

inline constexpr SaslProfile kSmtpSasl{"SMTP", kAuthMechanisms};
inline constexpr SaslProfile kImapSasl{"IMAP", kImapMechanisms};

inline constexpr std::array<std::string_view, 11> kAuthKeys{
    "username",           "mechanism", "password_env", "password_file",
    "token_file",         "token_url", "client_id",    "refresh_token_file",
    "client_secret_file", "scope",     "token_ca_file"};

// An IMAP table's server: the keys naming its host, port and TLS mode differ between tables
// ([targets.imap] "host", [targets.roundtrip] "imap_host").
struct ImapServerKeys {
    std::string_view host;
    std::string_view port;
    std::string_view tls;
};
struct ImapServer {
    std::string host;
    uint16_t port = 993;
    TlsMode tls = TlsMode::implicit;
    TlsOptions tls_options;
    AuthConfig auth;
};

class SettingsReader : public TomlReader {
  public:
    using TomlReader::TomlReader;

    TlsOptions read_tls_options(const toml::table& table, std::string_view path);
    // [targets.auth]: exactly its keys (kAuthKeys).
    AuthConfig read_auth(const toml::table& table, const std::string& path);
    // The keys of kAuthKeys, in [targets.auth] or in another table that logs in (whose own
    // check_known_keys covers them): a user name and exactly one secret source.
    AuthConfig read_credentials(const toml::table& table, const std::string& path,
                                const SaslProfile& sasl);
    MessageConfig read_message(const toml::table& table, const std::string& path);
    // The server an IMAP table logs in to: its host (default `default_host`), TLS mode
    // (implicit by default), port (993 with implicit TLS, else 143), [.tls_options] and login.
    ImapServer read_imap_server(const toml::table& table, const std::string& path,
                                const ImapServerKeys& keys, const std::string& default_host);
    // Warns when a file holding a secret can be read by every user.
    void warn_if_others_read(const Setting<std::string>& file, std::string_view path,
                             std::string_view key, std::string_view what);

  private:
    // A file with a secret in it, checked at load; "" when absent or invalid (reported).
    std::string read_secret_file_path(const toml::table& table, std::string_view path,
                                      std::string_view key, std::string_view what);
    Setting<AuthMechanism> read_mechanism(const toml::table& table, std::string_view path,
                                          const SaslProfile& sasl);
    void read_refresh_flow(const toml::table& table, const std::string& path, AuthConfig& auth);
    void check_credential_source(const toml::table& table, const std::string& path,
                                 const Setting<AuthMechanism>& mechanism);
    std::vector<std::pair<std::string, std::string>> read_headers(const toml::table& table,
                                                                  const std::string& path);
};

}  // namespace mailcanary
