#include "probes/settings_reader.hpp"

#include <algorithm>

#include "probes/validators.hpp"

namespace mailcanary {
namespace {

constexpr std::array<std::string_view, 4> kTlsOptionsKeys{"ca_file", "server_name",
                                                          "insecure_skip_verify", "min_version"};
// Where the secret comes from; exactly one source per [targets.auth] (or [targets.roundtrip]):
// one of these keys, or the OAuth2 refresh flow.
constexpr std::array<std::string_view, 3> kCredentialKeys{"password_env", "password_file",
                                                          "token_file"};
// The OAuth2 refresh flow is one credential source spread over several keys; any of them given
// means it is used, and then the first three are required.
constexpr std::array<std::string_view, 6> kRefreshFlowKeys{
    "token_url", "client_id", "refresh_token_file", "client_secret_file", "scope", "token_ca_file"};
constexpr std::size_t kRequiredRefreshFlowKeys = 3;
constexpr std::string_view kRefreshFlow = "the OAuth2 refresh flow";
constexpr std::array<std::string_view, 6> kMessageKeys{"from", "to",      "subject",
                                                       "mode", "headers", "max_messages_per_hour"};
// A budget beyond this is none: no provider lets one account send more an hour.
constexpr std::int64_t kMostMessagesPerHour = 100000;
constexpr std::size_t kMaxHeaderValueLength = 900;  // with its name, well within a 998-octet line
constexpr std::array<Choice<TlsVersion>, 4> kTlsVersions{{
    {"1.0", TlsVersion::v1_0},
    {"1.1", TlsVersion::v1_1},
    {"1.2", TlsVersion::v1_2},
    {"1.3", TlsVersion::v1_3},
}};
constexpr std::array<Choice<AcceptMode>, 2> kAcceptModes{{
    {"data", AcceptMode::data},
    {"rcpt", AcceptMode::rcpt},
}};

// Which kind of secret a mechanism sends; "auto" picks one that fits the secret given.
bool needs_token(AuthMechanism mechanism) {
    return mechanism == AuthMechanism::xoauth2 || mechanism == AuthMechanism::oauthbearer;
}

bool is_refresh_flow_key(std::string_view key) {
    return std::find(kRefreshFlowKeys.begin(), kRefreshFlowKeys.end(), key) !=
           kRefreshFlowKeys.end();
}

// A credential source as messages name it, by one of its keys.
std::string source_name(std::string_view key) {
    if (is_refresh_flow_key(key)) return std::string(kRefreshFlow) + " (" + std::string(key) + ")";
    return std::string(key);
}

}  // namespace

TlsOptions SettingsReader::read_tls_options(const toml::table& table, std::string_view path) {
    check_known_keys(table, path, kTlsOptionsKeys);
    TlsOptions options;
    options.ca_file =
        checked(read_path(table, path, "ca_file"), path, "ca_file", readable_file("CA file"))
            .value.value_or("");
    options.server_name = checked(read_non_empty_string(table, path, "server_name"), path,
                                  "server_name", check_tls_name)
                              .value.value_or("");
    options.insecure_skip_verify =
        read<bool>(table, path, "insecure_skip_verify").value.value_or(false);
    options.min_version = read_choice(table, path, "min_version", kTlsVersions, "TLS version")
                              .value.value_or(TlsVersion::v1_2);
    return options;
}

AuthConfig SettingsReader::read_auth(const toml::table& table, const std::string& path) {
    check_known_keys(table, path, kAuthKeys);
    return read_credentials(table, path, kSmtpSasl);
}

// The keys of kAuthKeys, in [targets.auth] or in another table that logs in (whose own
// check_known_keys covers them): a user name and exactly one secret source.
AuthConfig SettingsReader::read_credentials(const toml::table& table, const std::string& path,
                                            const SaslProfile& sasl) {
    AuthConfig auth;
    auth.username =
        checked(read_required_string(table, path, "username"), path, "username", check_no_control)
            .value.value_or("");
    const Setting<AuthMechanism> mechanism = read_mechanism(table, path, sasl);
    auth.mechanism = mechanism.value.value_or(AuthMechanism::automatic);
    auth.password_env = checked(read_non_empty_string(table, path, "password_env"), path,
                                "password_env", check_password_env)
                            .value.value_or("");
    auth.password_file = read_secret_file_path(table, path, "password_file", "password file");
    // Not checked on disk: another process keeps it fresh, and it is read at every run.
    const Setting<std::string> token_file = read_path(table, path, "token_file");
    warn_if_others_read(token_file, path, "token_file", "token file");
    auth.token_file = token_file.value.value_or("");
    read_refresh_flow(table, path, auth);
    check_credential_source(table, path, mechanism);
    return auth;
}

std::string SettingsReader::read_secret_file_path(const toml::table& table, std::string_view path,
                                                  std::string_view key, std::string_view what) {
    const Setting<std::string> file =
        checked(read_path(table, path, key), path, key, secret_holding_file(what));
    warn_if_others_read(file, path, key, what);
    return file.value.value_or("");
}

void SettingsReader::warn_if_others_read(const Setting<std::string>& file, std::string_view path,
                                         std::string_view key, std::string_view what) {
    if (!file.value) return;
    if (auto problem = check_not_world_readable(*file.value, what)) {
        warning(file.node->source(), child_key(path, key), std::move(*problem));
    }
}

// One of the protocol's mechanisms; one the agent has only for another protocol is named as
// such rather than as unknown.
Setting<AuthMechanism> SettingsReader::read_mechanism(const toml::table& table,
                                                      std::string_view path,
                                                      const SaslProfile& sasl) {
    Setting<std::string> text = read<std::string>(table, path, "mechanism");
    Setting<AuthMechanism> mechanism{text.node, std::nullopt};
    if (!text.value) return mechanism;
    mechanism.value = find_choice(sasl.mechanisms, *text.value);
    if (mechanism.value) return mechanism;
    const bool elsewhere =
        find_choice(std::span<const Choice<AuthMechanism>>(kAuthMechanisms), *text.value)
            .has_value();
    error(text.node->source(), child_key(path, "mechanism"),
          (elsewhere ? "SASL mechanism " + in_quotes(*text.value) + " is not supported for " +
                           std::string(sasl.protocol)
                     : "unknown SASL mechanism " + in_quotes(*text.value)) +
              "; expected " + choices_text(sasl.mechanisms));
    return mechanism;
}

// The OAuth2 refresh flow's keys, each checked where it is read; when any is given, the
// required ones are reported missing at the table.
void SettingsReader::read_refresh_flow(const toml::table& table, const std::string& path,
                                       AuthConfig& auth) {
    auth.token_url =
        checked(read_non_empty_string(table, path, "token_url"), path, "token_url", check_token_url)
            .value.value_or("");
    auth.client_id = checked(read_non_empty_string(table, path, "client_id"), path, "client_id",
                             check_no_control)
                         .value.value_or("");
    auth.refresh_token_file =
        read_secret_file_path(table, path, "refresh_token_file", "refresh token file");
    auth.client_secret_file =
        read_secret_file_path(table, path, "client_secret_file", "client secret file");
    auth.scope = checked(read<std::string>(table, path, "scope"), path, "scope", check_no_control)
                     .value.value_or("");
    auth.token_ca_file = checked(read_path(table, path, "token_ca_file"), path, "token_ca_file",
                                 readable_file("CA file"))
                             .value.value_or("");
    if (!first_given(table, kRefreshFlowKeys)) return;
    for (std::string_view key : std::span(kRefreshFlowKeys).first(kRequiredRefreshFlowKeys)) {
        require(table, path, key, "; " + std::string(kRefreshFlow) + " needs it");
    }
}

// Exactly one credential source, of the kind the mechanism sends. Each source's own value
// is checked where it is read; this looks only at which keys are given. The refresh flow is
// given where the first of its keys is.
void SettingsReader::check_credential_source(const toml::table& table, const std::string& path,
                                             const Setting<AuthMechanism>& mechanism) {
    std::vector<std::pair<std::string_view, const toml::node*>> given;
    for (std::string_view key : kCredentialKeys) {
        if (const toml::node* node = table.get(key)) given.emplace_back(key, node);
    }
    if (auto refresh_flow = first_given(table, kRefreshFlowKeys)) {
        given.push_back(*refresh_flow);
    }
    std::sort(given.begin(), given.end(), [](const auto& a, const auto& b) {
        return position(*a.second) < position(*b.second);
    });
    const std::string choices = "password_env, password_file, token_file or " +
                                std::string(kRefreshFlow) +
                                " (token_url, client_id, refresh_token_file)";
    if (given.empty()) {
        error(table.source(), path, "needs one of " + choices);
        return;
    }
    for (std::size_t i = 1; i < given.size(); ++i) {
        error(given[i].second->source(), child_key(path, given[i].first),
              "give only one of " + choices + "; " + source_name(given[0].first) +
                  " is already given at line " +
                  std::to_string(given[0].second->source().begin.line));
    }
    if (given.size() > 1 || !mechanism.value || *mechanism.value == AuthMechanism::automatic) {
        return;
    }
    const bool refresh_flow_given = is_refresh_flow_key(given[0].first);
    const bool token_given = given[0].first == "token_file" || refresh_flow_given;
    if (needs_token(*mechanism.value) == token_given) return;
    error(mechanism.node->source(), child_key(path, "mechanism"),
          "mechanism " + in_quotes(choice_text(kAuthMechanisms, *mechanism.value)) + " needs " +
              (token_given ? "password_env or password_file"
                           : "token_file or " + std::string(kRefreshFlow)) +
              ", not " +
              (refresh_flow_given ? std::string(kRefreshFlow) : std::string(given[0].first)));
}

MessageConfig SettingsReader::read_message(const toml::table& table, const std::string& path) {
    check_known_keys(table, path, kMessageKeys);
    MessageConfig message;
    message.from = checked(read_required_string(table, path, "from"), path, "from", check_address)
                       .value.value_or("");
    if (require(table, path, "to")) {
        message.to = read_string_list(table, path, "to", "addresses", check_address)
                         .value.value_or(std::vector<std::string>{});
    }
    message.subject =
        checked(read<std::string>(table, path, "subject"), path, "subject", check_subject)
            .value.value_or(message.subject);
    message.mode = read_choice(table, path, "mode", kAcceptModes, "accept mode")
                       .value.value_or(AcceptMode::data);
    if (const toml::table* headers = find_section(table, path, "headers")) {
        message.headers = read_headers(*headers, child_key(path, "headers"));
    }
    if (const auto budget =
            read_integer(table, path, "max_messages_per_hour", 1, kMostMessagesPerHour).value) {
        message.max_messages_per_hour = static_cast<std::size_t>(*budget);
    }
    return message;
}

// Name = value, in the table's order (toml++ keeps keys sorted, byte by byte). A bad name
// is reported at the name, a bad value at the value.
std::vector<std::pair<std::string, std::string>> SettingsReader::read_headers(
    const toml::table& table, const std::string& path) {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& [key, node] : table) {
        const std::string name(key.str());
        const std::string header_key = child_key(path, name);
        std::optional<std::string> name_problem = check_header_name(name);
        if (name_problem) error(key.source(), header_key, std::move(*name_problem));
        std::optional<std::string> value = typed<std::string>(node, header_key);
        std::optional<std::string> value_problem;
        if (value) value_problem = check_header_text(*value, kMaxHeaderValueLength);
        if (value_problem) error(node.source(), header_key, std::move(*value_problem));
        if (!name_problem && value && !value_problem) headers.emplace_back(name, *value);
    }
    return headers;
}

ImapServer SettingsReader::read_imap_server(const toml::table& table, const std::string& path,
                                            const ImapServerKeys& keys,
                                            const std::string& default_host) {
    ImapServer server;
    server.host =
        checked(read_non_empty_string(table, path, keys.host), path, keys.host, check_host)
            .value.value_or(default_host);
    server.tls =
        read_choice(table, path, keys.tls, kTlsModes, "TLS mode").value.value_or(TlsMode::implicit);
    const Setting<int64_t> port = read_integer(table, path, keys.port, 1, 65535);
    server.port = port.value ? static_cast<uint16_t>(*port.value) : default_imap_port(server.tls);
    server.tls_options =
        read_tls_options(read_section(table, path, "tls_options"), child_key(path, "tls_options"));
    server.auth = read_credentials(table, path, kImapSasl);
    return server;
}

}  // namespace mailcanary
