// The agent's configuration: parsed and validated once, at load, into typed structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/duration.hpp"

namespace mailcanary {

enum class TlsMode { none, starttls, implicit };

enum class TlsVersion { v1_0, v1_1, v1_2, v1_3 };

enum class AuthMechanism { automatic, plain, login, cram_md5, xoauth2, oauthbearer };

// What the auth probe counts as success: the server accepting the credentials, or refusing
// them with a 5xx (a negative test, e.g. that a disabled account stays disabled).
enum class Expectation { success, reject };

// How far the accept probe goes: send the message, or stop after RCPT TO (then RSET) so that
// nothing is delivered.
enum class AcceptMode { data, rcpt };

struct TlsOptions {
    std::string ca_file;      // empty: the system trust store
    std::string server_name;  // empty: the target's host (SNI and verification)
    bool insecure_skip_verify = false;
    TlsVersion min_version = TlsVersion::v1_2;

    bool operator==(const TlsOptions&) const = default;
};

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

// The probe message the accept probe sends.
struct MessageConfig {
    std::string from;             // envelope sender and From header
    std::vector<std::string> to;  // recipients, at least one
    std::string subject = "mailcanary probe";
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    AcceptMode mode = AcceptMode::data;

    bool operator==(const MessageConfig&) const = default;
};

// What the roundtrip probe does with its message once it has been measured.
enum class CleanupMode { delete_message, trash, keep };

// [targets.roundtrip]: the mailbox the probe message is followed into, read over IMAP.
struct RoundtripConfig {
    std::string imap_host;                 // default: the target's host
    uint16_t imap_port = 993;              // default: 993 for "implicit", else 143
    TlsMode imap_tls = TlsMode::implicit;  // none | starttls | implicit
    TlsOptions tls_options;                // [targets.roundtrip.tls_options]
    AuthConfig auth;                       // username and one secret source, as for SMTP
    std::string mailbox = "INBOX";
    // Unset: the folder with the \Junk special-use flag, else those of Junk, Spam and
    // [Gmail]/Spam that exist. Set (even empty): exactly these.
    std::optional<std::vector<std::string>> junk_folders;
    Duration timeout = std::chrono::minutes(2);  // from the final 250 to "lost"
    CleanupMode cleanup = CleanupMode::delete_message;
    bool idle = true;                                  // use IDLE when the server offers it
    Duration poll_interval = std::chrono::seconds(1);  // NOOP polling without IDLE
    // While a probe message is awaited, also look every 5% of its time in flight (25 ms at the
    // least, poll_interval at the most): a server's delayed IDLE notice (Dovecot's 500 ms) or a
    // long poll_interval would otherwise be counted as delivery time.
    bool prompt_checks = true;
    // Trust only Authentication-Results headers from this authserv-id (RFC 8601 5); empty:
    // the topmost one, which the receiving server added last.
    std::string authserv_id;

    bool operator==(const RoundtripConfig&) const = default;
};

struct TargetConfig {
    std::string name;
    std::string host;
    uint16_t port = 25;  // 465 when tls = "implicit" and no port is given
    TlsMode tls = TlsMode::starttls;
    std::string helo;
    Duration interval{};
    Duration timeout{};
    std::vector<std::string> probes;  // names from the probe table, e.g. "connect"
    TlsOptions tls_options;
    std::optional<AuthConfig> auth;     // required when probes include "auth"
    bool allow_plaintext_auth = false;  // false: credentials are never sent without TLS
    Expectation expect = Expectation::success;
    std::optional<MessageConfig> message;  // required when probes include "accept" or "roundtrip"
    std::optional<RoundtripConfig> roundtrip;  // required when probes include "roundtrip"

    bool operator==(const TargetConfig&) const = default;
};

struct MetricsConfig {
    std::vector<double> duration_buckets;  // seconds, strictly increasing
    bool phase_histograms = true;          // false: a last-run gauge per phase instead

    bool operator==(const MetricsConfig&) const = default;
};

struct AgentConfig {
    std::vector<std::string> listen_addresses;  // "host:port", "[v6]:port" or ":port"
    unsigned max_concurrent_probes = 512;
    MetricsConfig metrics;
    // Absolute path of the key that signs each probe message's token; by default
    // "mailcanary.secret" beside the config file. Created by the agent if it does not exist.
    std::string secret_file;
};

struct Config {
    std::string source_path;  // the file it was loaded from
    AgentConfig agent;
    std::vector<TargetConfig> targets;
};

// One problem found while loading, located in the file.
struct ConfigError {
    std::string file;
    unsigned line = 0;    // 1-based; 0 when the error has no place in the file
    unsigned column = 0;  // 1-based
    std::string key;      // dotted path, e.g. "targets[2].timeout"
    std::string message;

    // "file:line:column: key: message"
    std::string to_string() const;
};

struct ConfigResult {
    std::optional<Config> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
};

// Parses and validates; every problem found is reported, not only the first.
ConfigResult load_config_file(const std::string& path);
ConfigResult load_config_string(std::string_view text, const std::string& path_for_errors);

}  // namespace mailcanary
