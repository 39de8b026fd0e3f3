#include "agent/config.hpp"

#include "protocols/credentials.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
#include <sstream>
#include <system_error>

#include <toml++/toml.h>

#include "common/text.hpp"
#include "probes/probe.hpp"
#include "probes/registry.hpp"

namespace mailcanary {

std::string ConfigError::to_string() const {
    std::string text = file;
    if (line > 0) text += ":" + std::to_string(line) + ":" + std::to_string(column);
    text += ": ";
    if (!key.empty()) text += key + ": ";
    return text + message;
}

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultListenAddress = ":9725";
constexpr unsigned kDefaultMaxConcurrentProbes = 512;
constexpr int64_t kMaxConcurrentProbesLimit = 100'000;
constexpr std::array kDefaultDurationBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,  2.5,   5.0,  10.0};
constexpr size_t kMaxDurationBuckets = 50;
constexpr Duration kDefaultInterval = std::chrono::seconds(30);
constexpr Duration kDefaultTimeout = std::chrono::seconds(10);
constexpr Duration kLongestDuration = std::chrono::hours(24);
constexpr std::string_view kDefaultProbe = "connect";
constexpr std::string_view kAuthProbe = "auth";
constexpr std::string_view kAcceptProbe = "accept";
constexpr std::string_view kRoundtripProbe = "roundtrip";
constexpr std::string_view kDefaultSecretFile = "mailcanary.secret";
constexpr size_t kMaxAddressLength = 254;  // RFC 5321 4.5.3.1.3, less the angle brackets
constexpr size_t kMaxSubjectLength = 200;
constexpr size_t kMaxHeaderNameLength = 76;
constexpr size_t kMaxHeaderValueLength = 900;  // with its name, well within a 998-octet line
constexpr uint16_t kSmtpPort = 25;
constexpr uint16_t kSubmissionsPort = 465;  // SMTP over implicit TLS
constexpr uint16_t kImapPort = 143;
constexpr uint16_t kImapsPort = 993;  // IMAP over implicit TLS
// Polling more often than this hammers the server; less often, and delivery times are noise.
constexpr Duration kShortestPollInterval = std::chrono::milliseconds(10);
constexpr Duration kLongestPollInterval = std::chrono::hours(1);
constexpr size_t kMaxSuggestionDistance = 2;

constexpr std::array<std::string_view, 4> kRootKeys{"agent", "metrics", "defaults", "targets"};
constexpr std::array<std::string_view, 3> kAgentKeys{"listen_addresses", "max_concurrent_probes",
                                                     "secret_file"};
constexpr std::array<std::string_view, 2> kMetricsKeys{"duration_buckets", "phase_histograms"};
constexpr std::array<std::string_view, 5> kDefaultsKeys{"interval", "timeout", "helo", "tls",
                                                        "probes"};
constexpr std::array<std::string_view, 14> kTargetKeys{"name",
                                                       "host",
                                                       "port",
                                                       "tls",
                                                       "helo",
                                                       "interval",
                                                       "timeout",
                                                       "probes",
                                                       "tls_options",
                                                       "auth",
                                                       "allow_plaintext_auth",
                                                       "expect",
                                                       "message",
                                                       "roundtrip"};
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
constexpr size_t kRequiredRefreshFlowKeys = 3;
constexpr std::string_view kRefreshFlow = "the OAuth2 refresh flow";
constexpr std::string_view kHttpsScheme = "https://";
constexpr std::array<std::string_view, 11> kAuthKeys{
    "username",           "mechanism", "password_env", "password_file",
    "token_file",         "token_url", "client_id",    "refresh_token_file",
    "client_secret_file", "scope",     "token_ca_file"};
// [targets.roundtrip] holds its IMAP login's credentials itself, under the keys of [targets.auth].
constexpr std::array<std::string_view, 12> kRoundtripOwnKeys{
    "imap_host", "imap_port", "imap_tls", "tls_options",   "mailbox",       "junk_folders",
    "timeout",   "cleanup",   "idle",     "poll_interval", "prompt_checks", "authserv_id"};

template <size_t A, size_t B>
constexpr std::array<std::string_view, A + B> concatenated(
    const std::array<std::string_view, A>& first, const std::array<std::string_view, B>& second) {
    std::array<std::string_view, A + B> all{};
    std::copy(first.begin(), first.end(), all.begin());
    std::copy(second.begin(), second.end(), all.begin() + A);
    return all;
}

constexpr auto kRoundtripKeys = concatenated(kRoundtripOwnKeys, kAuthKeys);
constexpr std::array<std::string_view, 5> kMessageKeys{"from", "to", "subject", "mode", "headers"};
// Headers the probe message always has; [targets.message.headers] may not set them again.
constexpr std::array<std::string_view, 10> kAgentHeaders{
    "Date",           "Message-ID",        "From",         "To",
    "Subject",        "MIME-Version",      "Content-Type", "Content-Transfer-Encoding",
    "Auto-Submitted", "X-Mailcanary-Token"};

// A probe that cannot run without a sub-table of its target, e.g. [targets.auth].
struct ProbeTable {
    std::string_view probe;
    std::string_view key;
};

constexpr std::array<ProbeTable, 4> kProbeTables{{
    {kAuthProbe, "auth"},
    {kAcceptProbe, "message"},
    {kRoundtripProbe, "message"},
    {kRoundtripProbe, "roundtrip"},
}};

template <typename Enum>
struct Choice {
    std::string_view text;
    Enum value;
};

template <typename Enum>
std::optional<Enum> find_choice(std::span<const Choice<Enum>> choices, std::string_view text) {
    for (const Choice<Enum>& choice : choices) {
        if (choice.text == text) return choice.value;
    }
    return std::nullopt;
}

template <typename Enum, size_t N>
std::string_view choice_text(const std::array<Choice<Enum>, N>& choices, Enum value) {
    for (const Choice<Enum>& choice : choices) {
        if (choice.value == value) return choice.text;
    }
    return "";
}

constexpr std::array<Choice<TlsMode>, 3> kTlsModes{{
    {"none", TlsMode::none},
    {"starttls", TlsMode::starttls},
    {"implicit", TlsMode::implicit},
}};

constexpr std::array<Choice<TlsVersion>, 4> kTlsVersions{{
    {"1.0", TlsVersion::v1_0},
    {"1.1", TlsVersion::v1_1},
    {"1.2", TlsVersion::v1_2},
    {"1.3", TlsVersion::v1_3},
}};

constexpr std::array<Choice<AuthMechanism>, 6> kAuthMechanisms{{
    {"auto", AuthMechanism::automatic},
    {"plain", AuthMechanism::plain},
    {"login", AuthMechanism::login},
    {"cram-md5", AuthMechanism::cram_md5},
    {"xoauth2", AuthMechanism::xoauth2},
    {"oauthbearer", AuthMechanism::oauthbearer},
}};

// IMAP has no CRAM-MD5 here: the roundtrip probe does not implement it.
constexpr std::array<Choice<AuthMechanism>, 5> kImapMechanisms{{
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

constexpr SaslProfile kSmtpSasl{"SMTP", kAuthMechanisms};
constexpr SaslProfile kImapSasl{"IMAP", kImapMechanisms};

constexpr std::array<Choice<Expectation>, 2> kExpectations{{
    {"success", Expectation::success},
    {"reject", Expectation::reject},
}};

constexpr std::array<Choice<AcceptMode>, 2> kAcceptModes{{
    {"data", AcceptMode::data},
    {"rcpt", AcceptMode::rcpt},
}};

constexpr std::array<Choice<CleanupMode>, 3> kCleanupModes{{
    {"delete", CleanupMode::delete_message},
    {"trash", CleanupMode::trash},
    {"keep", CleanupMode::keep},
}};

// A key as found in a table: absent, present but invalid (already reported), or valid.
template <typename T>
struct Setting {
    const toml::node* node = nullptr;  // null when the key is absent
    std::optional<T> value;            // empty when absent or invalid

    bool present() const { return node != nullptr; }
};

// What a target inherits from [defaults]; empty optionals stand for invalid defaults, which are
// reported once at [defaults] and must not cause follow-up errors in every target.
struct TargetDefaults {
    std::optional<Duration> interval = kDefaultInterval;
    std::optional<Duration> timeout = kDefaultTimeout;
    std::string helo;
    TlsMode tls = TlsMode::starttls;
    std::vector<std::string> probes{std::string(kDefaultProbe)};
};

// Checks one list element; returns the problem, if any.
using ElementCheck = std::function<std::optional<std::string>(const std::string&)>;

// Whether a list setting may be given as [] (meaning: none).
enum class EmptyList { refused, allowed };

std::string child_key(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

// Array positions in keys are 1-based: the first target is "targets[1]".
std::string element_key(std::string_view path, size_t zero_based_index) {
    return std::string(path) + "[" + std::to_string(zero_based_index + 1) + "]";
}

bool is_control(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < ' ' || byte == 0x7f;
}

// Control characters are escaped, so that a value quoted in a message cannot break its line.
std::string in_quotes(std::string_view text) {
    std::string quoted = "\"";
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (!is_control(c)) {
            quoted += c;
        } else if (c == '\r') {
            quoted += "\\r";
        } else if (c == '\n') {
            quoted += "\\n";
        } else if (c == '\t') {
            quoted += "\\t";
        } else {
            constexpr std::string_view kHex = "0123456789abcdef";
            quoted += "\\x";
            quoted += kHex[byte >> 4];
            quoted += kHex[byte & 0xf];
        }
    }
    return quoted + "\"";
}

std::string type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

template <typename T>
constexpr toml::node_type node_type_for() {
    if constexpr (std::is_same_v<T, std::string>) return toml::node_type::string;
    if constexpr (std::is_same_v<T, int64_t>) return toml::node_type::integer;
    if constexpr (std::is_same_v<T, bool>) return toml::node_type::boolean;
}

// Optimal string alignment distance: edits, counting a swap of neighbours as one.
size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t substitution = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + substitution});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

// The candidate within kMaxSuggestionDistance edits of text, if any.
std::optional<std::string_view> closest_match(std::string_view text,
                                              std::span<const std::string_view> candidates) {
    std::optional<std::string_view> closest;
    size_t closest_distance = kMaxSuggestionDistance + 1;
    for (std::string_view candidate : candidates) {
        const size_t distance = edit_distance(text, candidate);
        if (distance < closest_distance) {
            closest = candidate;
            closest_distance = distance;
        }
    }
    return closest;
}

std::string comma_separated(std::span<const std::string_view> items) {
    std::string text;
    for (size_t i = 0; i < items.size(); ++i) text += (i > 0 ? ", " : "") + std::string(items[i]);
    return text;
}

std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known) {
    if (auto suggestion = closest_match(key, known)) {
        return "unknown key; did you mean " + in_quotes(*suggestion) + "?";
    }
    return "unknown key; expected one of: " + comma_separated(known);
}

template <typename Enum>
std::string choices_text(std::span<const Choice<Enum>> choices) {
    std::string text;
    for (size_t i = 0; i < choices.size(); ++i) {
        text += i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", ");
        text += in_quotes(choices[i].text);
    }
    return text;
}

bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), is_control);
}

bool has_space_or_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) { return c == ' ' || is_control(c); });
}

std::optional<std::string> check_no_control(const std::string& text) {
    if (has_control(text)) return "must not contain control characters";
    return std::nullopt;
}

std::optional<std::string> check_port_text(std::string_view port) {
    const std::string problem = "needs a port 1..65535 after the last ':'";
    if (port.empty() || port.size() > 5) return problem;
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return problem;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return problem;
    return std::nullopt;
}

// "host:port", "[v6addr]:port" or ":port"; the syntax only, nothing is resolved.
std::optional<std::string> check_listen_address(const std::string& address) {
    if (address.empty()) return "must not be empty";
    if (has_space_or_control(address)) return "must not contain spaces or control characters";
    std::string_view host = address;
    std::string_view port;
    if (address.front() == '[') {
        const size_t close = address.find(']');
        if (close == std::string::npos || close + 1 >= address.size() ||
            address[close + 1] != ':') {
            return "an IPv6 address is written \"[addr]:port\"";
        }
        host = std::string_view(address).substr(1, close - 1);
        port = std::string_view(address).substr(close + 2);
        if (host.empty()) return "empty IPv6 address between '[' and ']'";
    } else {
        const size_t colon = address.rfind(':');
        if (colon == std::string::npos)
            return "expected \"host:port\", \"[v6addr]:port\" or \":port\"";
        host = std::string_view(address).substr(0, colon);
        port = std::string_view(address).substr(colon + 1);
        if (host.find_first_of(":[]") != std::string_view::npos) {
            return "an IPv6 address must be in brackets: \"[addr]:port\"";
        }
    }
    return check_port_text(port);
}

std::optional<std::string> check_probe_name(const std::string& name) {
    if (is_known_probe(name)) return std::nullopt;
    std::vector<std::string_view> known;
    for (const ProbeEntry& probe : all_probes()) known.push_back(probe.name);
    std::string message = "unknown probe " + in_quotes(name);
    if (auto suggestion = closest_match(name, known)) {
        message += "; did you mean " + in_quotes(*suggestion) + "?";
    }
    return message + " (known probes: " + comma_separated(known) + ")";
}

std::optional<std::string> check_host(const std::string& host) {
    if (host.find_first_of("[]") != std::string::npos) {
        return "write an IPv6 address without brackets";
    }
    if (has_space_or_control(host)) return "must not contain spaces or control characters";
    return std::nullopt;
}

// An IMAP mailbox name goes into the dialog as a quoted string or a literal: anything but a line
// break or a NUL can be sent.
std::optional<std::string> check_mailbox_name(const std::string& name) {
    if (name.empty()) return "must not be empty";
    if (name.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return "must not contain CR, LF or NUL";
    }
    return std::nullopt;
}

// RFC 8601 2.5: in practice the receiving server's host name; it is compared, never sent.
std::optional<std::string> check_authserv_id(const std::string& id) {
    if (has_space_or_control(id)) return "must not contain spaces or control characters";
    return std::nullopt;
}

std::optional<std::string> check_poll_interval(Duration interval) {
    if (interval >= kShortestPollInterval && interval <= kLongestPollInterval) return std::nullopt;
    return "must be between " + format_duration(kShortestPollInterval) + " and " +
           format_duration(kLongestPollInterval) + ", got " + format_duration(interval);
}

// The EHLO argument goes into the SMTP dialog verbatim: no room for spaces or line breaks.
std::optional<std::string> check_helo(const std::string& helo) {
    if (has_space_or_control(helo)) return "must not contain spaces or control characters";
    return std::nullopt;
}

// The name a certificate is checked against (and sent as SNI): a NUL or a scope id would make
// OpenSSL check a different name, or none.
std::optional<std::string> check_tls_name(const std::string& name) {
    if (has_space_or_control(name)) return "must not contain spaces or control characters";
    if (name.find('%') != std::string::npos) {
        return "a scoped IPv6 address cannot be checked against a certificate";
    }
    return std::nullopt;
}

// Names the variable in every message, never its value.
std::optional<std::string> check_password_env(const std::string& name) {
    if (name.find('=') != std::string::npos || has_control(name)) {
        return "must be an environment variable name, without '=' or control characters";
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return "environment variable " + in_quotes(name) + " is not set";
    if (*value == '\0') return "environment variable " + in_quotes(name) + " is empty";
    return std::nullopt;
}

// A path that may be absent, but if something is there, it is a regular file (or a link to one).
std::optional<std::string> check_regular_if_exists(const std::string& file, std::string_view what) {
    std::error_code ignored;
    if (fs::exists(file, ignored) && !fs::is_regular_file(file, ignored)) {
        return std::string(what) + " " + in_quotes(file) + " is not a regular file";
    }
    return std::nullopt;
}

// What keeps a file from being read at load: absent, not a regular file, no permission.
std::optional<std::string> check_readable_file(const std::string& file, std::string_view what) {
    const std::string named = std::string(what) + " " + in_quotes(file);
    std::error_code ignored;
    if (!fs::exists(file, ignored)) return named + " does not exist";
    if (auto problem = check_regular_if_exists(file, what)) return problem;
    if (!std::ifstream(file).is_open()) return named + " is not readable";
    return std::nullopt;
}

// A readable file with a secret in it (a password, a refresh token, a client secret): something
// besides the CR/LF trimmed from its end. Says what is wrong with the file, never what is in it.
std::optional<std::string> check_secret_holding_file(const std::string& file,
                                                     std::string_view what) {
    if (auto problem = check_readable_file(file, what)) return problem;
    // Read as the probe will read it; being readable, it can only fail by being empty.
    std::string error;
    if (!read_secret_file(file, error)) {
        return std::string(what) + " " + in_quotes(file) + " is empty";
    }
    return std::nullopt;
}

// check_readable_file and check_secret_holding_file as checks for ConfigReader::checked, naming
// the file `what` in their messages.
auto readable_file(std::string_view what) {
    return [what](const std::string& file) { return check_readable_file(file, what); };
}

auto secret_holding_file(std::string_view what) {
    return [what](const std::string& file) { return check_secret_holding_file(file, what); };
}

// The agent creates the secret file on first start; what is there already must be a file.
std::optional<std::string> check_secret_file(const std::string& file) {
    return check_regular_if_exists(file, "secret file");
}

// An address as the accept probe writes it, in MAIL FROM:<...>, RCPT TO:<...> and the From and
// To headers: a deliberately plain "local@domain", nothing that needs quoting or could end the
// angle brackets or split the address list.
std::optional<std::string> check_address(const std::string& address) {
    const auto invalid = [&](std::string_view problem) -> std::optional<std::string> {
        return "invalid address " + in_quotes(address) + ": " + std::string(problem);
    };
    if (address.empty()) return invalid("must not be empty");
    if (address.size() > kMaxAddressLength) {
        return invalid("longer than " + std::to_string(kMaxAddressLength) + " characters");
    }
    if (has_space_or_control(address))
        return invalid("must not contain spaces or control characters");
    if (address.find_first_of("<>,\"") != std::string::npos) {
        return invalid("must not contain '<', '>', ',' or '\"'");
    }
    const size_t at = address.find('@');
    if (at == std::string::npos || address.find('@', at + 1) != std::string::npos) {
        return invalid("needs exactly one '@'");
    }
    if (at == 0) return invalid("nothing before the '@'");
    if (at + 1 == address.size()) return invalid("no domain after the '@'");
    return std::nullopt;
}

// Header text goes into the message verbatim, one line each: no line breaks, a bounded length.
std::optional<std::string> check_header_text(std::string_view text, size_t max_length) {
    if (has_control(text)) return "must not contain control characters (line breaks included)";
    if (text.size() > max_length) {
        return "must be at most " + std::to_string(max_length) + " characters, got " +
               std::to_string(text.size());
    }
    return std::nullopt;
}

std::optional<std::string> check_subject(const std::string& subject) {
    return check_header_text(subject, kMaxSubjectLength);
}

// RFC 5322 2.2: a field name is printable ASCII without ':'; the agent's own are refused.
std::optional<std::string> check_header_name(std::string_view name) {
    const bool printable = std::all_of(name.begin(), name.end(),
                                       [](char c) { return c >= '!' && c <= '~' && c != ':'; });
    if (name.empty() || !printable) {
        return "header name " + in_quotes(name) + " must be printable ASCII without spaces or ':'";
    }
    if (name.size() > kMaxHeaderNameLength) {
        return "header name " + in_quotes(name) + " is longer than " +
               std::to_string(kMaxHeaderNameLength) + " characters";
    }
    for (std::string_view own : kAgentHeaders) {
        if (iequals(name, own)) return "header " + in_quotes(name) + " is set by the agent";
    }
    return std::nullopt;
}

// "https://host[:port][/path]" with a host. The value is never quoted back: user information in
// it would be a secret, so that is refused as well (the client secret has its own file).
std::optional<std::string> check_token_url(const std::string& url) {
    const std::string not_https = "token_url must be an https:// URL";
    if (!url.starts_with(kHttpsScheme) || has_space_or_control(url)) return not_https;
    const std::string_view rest = std::string_view(url).substr(kHttpsScheme.size());
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos) {
        return "token_url must not contain user information ('user@'); put the client secret in "
               "client_secret_file";
    }
    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with('[')) {  // an IPv6 address
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return not_https;
        host = authority.substr(1, close - 1);
        port = authority.substr(close + 1);
        if (!port.empty() && !port.starts_with(':')) return not_https;
    } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon);
    }
    if (host.empty() || (!port.empty() && check_port_text(port.substr(1)))) return not_https;
    return std::nullopt;
}

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

std::pair<uint32_t, uint32_t> position(const toml::node& node) {
    return {node.source().begin.line, node.source().begin.column};
}

// The one of `keys` given first in the file, with its value; none when none is given.
std::optional<std::pair<std::string_view, const toml::node*>> first_given(
    const toml::table& table, std::span<const std::string_view> keys) {
    std::optional<std::pair<std::string_view, const toml::node*>> first;
    for (std::string_view key : keys) {
        const toml::node* node = table.get(key);
        if (node != nullptr && (!first || position(*node) < position(*first->second))) {
            first.emplace(key, node);
        }
    }
    return first;
}

std::string machine_host_name() {
    std::array<char, 256> buffer{};
    if (gethostname(buffer.data(), buffer.size() - 1) != 0 || buffer[0] == '\0') return "localhost";
    return buffer.data();
}

const toml::table& empty_table() {
    static const toml::table table;
    return table;
}

class ConfigReader {
  public:
    ConfigReader(std::string file, fs::path base_directory)
        : file_(std::move(file)), base_directory_(std::move(base_directory)) {}

    Config read(const toml::table& root) {
        check_known_keys(root, "", kRootKeys);
        Config config;
        config.source_path = file_;
        config.agent = read_agent(read_section(root, "", "agent"));
        config.agent.metrics = read_metrics(read_section(root, "", "metrics"));
        const TargetDefaults defaults = read_defaults(read_section(root, "", "defaults"));
        config.targets = read_targets(root, defaults);
        return config;
    }

    std::vector<ConfigError> take_errors() { return std::move(errors_); }

    void error(const toml::source_region& where, std::string key, std::string message) {
        errors_.push_back(
            {file_, where.begin.line, where.begin.column, std::move(key), std::move(message)});
    }

  private:
    void check_known_keys(const toml::table& table, std::string_view path,
                          std::span<const std::string_view> known) {
        for (const auto& [key, node] : table) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            error(key.source(), child_key(path, key.str()), unknown_key_message(key.str(), known));
        }
    }

    // A sub-table; null when absent or not a table (reported).
    const toml::table* find_section(const toml::table& parent, std::string_view path,
                                    std::string_view key) {
        const toml::node* node = parent.get(key);
        if (node == nullptr) return nullptr;
        if (!node->is_table()) {
            report_type(*node, child_key(path, key), "a table");
            return nullptr;
        }
        return node->as_table();
    }

    // A sub-table; an absent one reads as empty so that every default applies.
    const toml::table& read_section(const toml::table& parent, std::string_view path,
                                    std::string_view key) {
        const toml::table* section = find_section(parent, path, key);
        return section != nullptr ? *section : empty_table();
    }

    void report_type(const toml::node& node, const std::string& key, std::string_view expected) {
        error(node.source(), key,
              "expected " + std::string(expected) + ", got " + type_name(node.type()));
    }

    template <typename T>
    std::optional<T> typed(const toml::node& node, const std::string& key) {
        if (const auto* value = node.as<T>()) return value->get();
        report_type(node, key, type_name(node_type_for<T>()));
        return std::nullopt;
    }

    template <typename T>
    Setting<T> read(const toml::table& table, std::string_view path, std::string_view key) {
        Setting<T> setting{table.get(key), std::nullopt};
        if (setting.present()) setting.value = typed<T>(*setting.node, child_key(path, key));
        return setting;
    }

    // Applies a check to a valid value: a problem is reported and makes the setting invalid.
    template <typename T, typename Check>
    Setting<T> checked(Setting<T> setting, std::string_view path, std::string_view key,
                       Check check) {
        if (!setting.value) return setting;
        if (std::optional<std::string> problem = check(*setting.value)) {
            error(setting.node->source(), child_key(path, key), std::move(*problem));
            setting.value.reset();
        }
        return setting;
    }

    Setting<std::string> read_non_empty_string(const toml::table& table, std::string_view path,
                                               std::string_view key) {
        return checked(read<std::string>(table, path, key), path, key,
                       [](const std::string& text) -> std::optional<std::string> {
                           if (text.empty()) return "must not be empty";
                           return std::nullopt;
                       });
    }

    // Reports a missing key at the table that lacks it; true when the key is there. `why`, if
    // any, is appended to the message.
    bool require(const toml::table& table, std::string_view path, std::string_view key,
                 std::string_view why = "") {
        if (table.contains(key)) return true;
        error(table.source(), child_key(path, key), "required key is missing" + std::string(why));
        return false;
    }

    Setting<std::string> read_required_string(const toml::table& table, std::string_view path,
                                              std::string_view key) {
        if (!require(table, path, key)) return {};
        return read_non_empty_string(table, path, key);
    }

    // Resolved against the config file's directory (an absolute one is kept) and normalised.
    std::string resolve(std::string_view file) const {
        return (base_directory_ / file).lexically_normal().string();
    }

    // A file name, resolved; nothing is checked on disk.
    Setting<std::string> read_path(const toml::table& table, std::string_view path,
                                   std::string_view key) {
        Setting<std::string> setting = read_non_empty_string(table, path, key);
        if (setting.value) setting.value = resolve(*setting.value);
        return setting;
    }

    Setting<int64_t> read_integer(const toml::table& table, std::string_view path,
                                  std::string_view key, int64_t min, int64_t max) {
        return checked(read<int64_t>(table, path, key), path, key,
                       [min, max](int64_t value) -> std::optional<std::string> {
                           if (value >= min && value <= max) return std::nullopt;
                           return "must be between " + std::to_string(min) + " and " +
                                  std::to_string(max) + ", got " + std::to_string(value);
                       });
    }

    Setting<Duration> read_duration(const toml::table& table, std::string_view path,
                                    std::string_view key) {
        Setting<std::string> text = read<std::string>(table, path, key);
        Setting<Duration> duration{text.node, std::nullopt};
        if (!text.value) return duration;
        duration.value = parse_duration(*text.value);
        if (!duration.value) {
            error(text.node->source(), child_key(path, key),
                  "invalid duration " + in_quotes(*text.value) +
                      "; expected e.g. \"30s\", \"1m30s\" or \"250ms\" (units d, h, m, s, ms)");
        } else if (duration.value->count() <= 0) {
            error(text.node->source(), child_key(path, key), "must be greater than 0");
            duration.value.reset();
        } else if (*duration.value > kLongestDuration) {
            // Far beyond any probing need, and keeps clock arithmetic (now + interval) in range.
            error(text.node->source(), child_key(path, key),
                  "must be at most 1d, got " + *text.value);
            duration.value.reset();
        }
        return duration;
    }

    template <typename Enum, size_t N>
    Setting<Enum> read_choice(const toml::table& table, std::string_view path, std::string_view key,
                              const std::array<Choice<Enum>, N>& choices, std::string_view what) {
        Setting<std::string> text = read<std::string>(table, path, key);
        Setting<Enum> choice{text.node, std::nullopt};
        if (!text.value) return choice;
        const std::span<const Choice<Enum>> all(choices);
        choice.value = find_choice(all, *text.value);
        if (!choice.value) {
            error(text.node->source(), child_key(path, key),
                  "unknown " + std::string(what) + " " + in_quotes(*text.value) + "; expected " +
                      choices_text(all));
        }
        return choice;
    }

    // An array of distinct strings, each passing check_element; not empty unless allowed.
    Setting<std::vector<std::string>> read_string_list(const toml::table& table,
                                                       std::string_view path, std::string_view key,
                                                       std::string_view what,
                                                       const ElementCheck& check_element,
                                                       EmptyList empty_list = EmptyList::refused) {
        Setting<std::vector<std::string>> list{table.get(key), std::nullopt};
        if (!list.present()) return list;
        const std::string list_key = child_key(path, key);
        const toml::array* array = list.node->as_array();
        if (array == nullptr) {
            report_type(*list.node, list_key, "an array of " + std::string(what));
            return list;
        }
        if (array->empty() && empty_list == EmptyList::refused) {
            error(list.node->source(), list_key, "must not be empty");
            return list;
        }
        std::vector<std::string> values;
        bool all_valid = true;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            const std::string key_of_element = element_key(list_key, i);
            std::optional<std::string> value = typed<std::string>(element, key_of_element);
            std::optional<std::string> problem;
            if (value) problem = check_element(*value);
            if (value && !problem &&
                std::find(values.begin(), values.end(), *value) != values.end()) {
                problem = "duplicate entry " + in_quotes(*value);
            }
            if (problem) error(element.source(), key_of_element, std::move(*problem));
            all_valid = all_valid && value && !problem;
            if (value) values.push_back(std::move(*value));
        }
        if (all_valid) list.value = std::move(values);
        return list;
    }

    Setting<std::vector<std::string>> read_probes(const toml::table& table, std::string_view path) {
        return read_string_list(table, path, "probes", "probe names", check_probe_name);
    }

    Setting<std::string> read_helo(const toml::table& table, std::string_view path) {
        return checked(read<std::string>(table, path, "helo"), path, "helo", check_helo);
    }

    AgentConfig read_agent(const toml::table& table) {
        constexpr std::string_view path = "agent";
        check_known_keys(table, path, kAgentKeys);
        AgentConfig agent;
        agent.listen_addresses =
            read_string_list(table, path, "listen_addresses", "addresses", check_listen_address)
                .value.value_or(std::vector<std::string>{std::string(kDefaultListenAddress)});
        const Setting<int64_t> max_probes =
            read_integer(table, path, "max_concurrent_probes", 1, kMaxConcurrentProbesLimit);
        agent.max_concurrent_probes = max_probes.value ? static_cast<unsigned>(*max_probes.value)
                                                       : kDefaultMaxConcurrentProbes;
        agent.secret_file =
            checked(read_path(table, path, "secret_file"), path, "secret_file", check_secret_file)
                .value.value_or(resolve(kDefaultSecretFile));
        return agent;
    }

    MetricsConfig read_metrics(const toml::table& table) {
        constexpr std::string_view path = "metrics";
        check_known_keys(table, path, kMetricsKeys);
        MetricsConfig metrics;
        metrics.duration_buckets =
            read_buckets(table, path)
                .value_or(std::vector<double>(kDefaultDurationBuckets.begin(),
                                              kDefaultDurationBuckets.end()));
        metrics.phase_histograms = read<bool>(table, path, "phase_histograms").value.value_or(true);
        return metrics;
    }

    // Histogram bucket bounds in seconds: 1..50 finite numbers > 0, strictly increasing.
    std::optional<std::vector<double>> read_buckets(const toml::table& table,
                                                    std::string_view path) {
        const toml::node* node = table.get("duration_buckets");
        if (node == nullptr) return std::nullopt;
        const std::string key = child_key(path, "duration_buckets");
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            report_type(*node, key, "an array of numbers");
            return std::nullopt;
        }
        if (array->empty() || array->size() > kMaxDurationBuckets) {
            error(node->source(), key,
                  "must have 1 to " + std::to_string(kMaxDurationBuckets) + " entries, got " +
                      std::to_string(array->size()));
            return std::nullopt;
        }
        std::vector<double> bounds;
        bool all_valid = true;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            std::optional<double> bound = bucket_bound(element, element_key(key, i), bounds);
            all_valid = all_valid && bound;
            // An invalid bound is left out, so the next one is compared with the last good one.
            if (bound) bounds.push_back(*bound);
        }
        if (!all_valid) return std::nullopt;
        return bounds;
    }

    std::optional<double> bucket_bound(const toml::node& element, const std::string& key,
                                       const std::vector<double>& previous_bounds) {
        std::optional<double> bound;
        if (const auto* integer = element.as_integer()) bound = static_cast<double>(integer->get());
        if (const auto* floating = element.as_floating_point()) bound = floating->get();
        if (!bound) {
            report_type(element, key, "a number of seconds");
            return std::nullopt;
        }
        std::string problem;
        if (!std::isfinite(*bound) || *bound <= 0) {
            problem = "must be a finite number of seconds greater than 0";
        } else if (!previous_bounds.empty() && *bound <= previous_bounds.back()) {
            std::ostringstream previous;
            previous << previous_bounds.back();
            problem = "must be greater than the bucket before it (" + previous.str() + ")";
        }
        if (problem.empty()) return bound;
        error(element.source(), key, std::move(problem));
        return std::nullopt;
    }

    TargetDefaults read_defaults(const toml::table& table) {
        constexpr std::string_view path = "defaults";
        check_known_keys(table, path, kDefaultsKeys);
        TargetDefaults defaults;
        const Setting<Duration> interval = read_duration(table, path, "interval");
        const Setting<Duration> timeout = read_duration(table, path, "timeout");
        check_timeout_below_interval(interval, timeout, defaults, path, "the built-in default");
        if (interval.present()) defaults.interval = interval.value;
        if (timeout.present()) defaults.timeout = timeout.value;
        const std::string helo = read_helo(table, path).value.value_or("");
        defaults.helo = helo.empty() ? machine_host_name() : helo;
        defaults.tls = read_choice(table, path, "tls", kTlsModes, "TLS mode")
                           .value.value_or(TlsMode::starttls);
        if (auto probes = read_probes(table, path).value) defaults.probes = std::move(*probes);
        return defaults;
    }

    // Checked where interval or timeout is set, so one bad pair in [defaults] is reported once
    // rather than in every target inheriting it. The error points at the timeout if this table
    // sets it, else at the interval.
    void check_timeout_below_interval(const Setting<Duration>& interval,
                                      const Setting<Duration>& timeout,
                                      const TargetDefaults& inherited, std::string_view path,
                                      std::string_view inherited_from) {
        if (!interval.present() && !timeout.present()) return;
        const std::optional<Duration> interval_value =
            interval.present() ? interval.value : inherited.interval;
        const std::optional<Duration> timeout_value =
            timeout.present() ? timeout.value : inherited.timeout;
        if (!interval_value || !timeout_value || *timeout_value < *interval_value) return;
        const auto describe = [&](const Setting<Duration>& setting, Duration value) {
            return format_duration(value) +
                   (setting.present() ? "" : " (" + std::string(inherited_from) + ")");
        };
        const Setting<Duration>& blamed = timeout.present() ? timeout : interval;
        error(blamed.node->source(), child_key(path, timeout.present() ? "timeout" : "interval"),
              "timeout " + describe(timeout, *timeout_value) + " must be shorter than interval " +
                  describe(interval, *interval_value));
    }

    std::vector<TargetConfig> read_targets(const toml::table& root,
                                           const TargetDefaults& defaults) {
        const toml::node* node = root.get("targets");
        if (node == nullptr) return {};  // an agent without targets still serves its own metrics
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            report_type(*node, "targets", "an array of tables ([[targets]])");
            return {};
        }
        std::vector<TargetConfig> targets;
        std::map<std::string, unsigned, std::less<>> first_line_of_name;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            const std::string path = element_key("targets", i);
            if (!element.is_table()) {
                report_type(element, path, "a table");
                continue;
            }
            const toml::table& table = *element.as_table();
            targets.push_back(read_target(table, path, defaults));
            const toml::node* name = table.get("name");
            const std::string& name_text = targets.back().name;
            if (name_text.empty()) continue;  // missing or invalid: already reported
            const auto [first, inserted] =
                first_line_of_name.emplace(name_text, name->source().begin.line);
            if (!inserted) {
                error(name->source(), child_key(path, "name"),
                      "duplicate target name " + in_quotes(name_text) + " (first defined at line " +
                          std::to_string(first->second) + ")");
            }
        }
        return targets;
    }

    TargetConfig read_target(const toml::table& table, const std::string& path,
                             const TargetDefaults& defaults) {
        check_known_keys(table, path, kTargetKeys);
        TargetConfig target;
        target.name =
            checked(read_required_string(table, path, "name"), path, "name", check_no_control)
                .value.value_or("");
        target.host = checked(read_required_string(table, path, "host"), path, "host", check_host)
                          .value.value_or("");
        target.tls =
            read_choice(table, path, "tls", kTlsModes, "TLS mode").value.value_or(defaults.tls);
        const Setting<int64_t> port = read_integer(table, path, "port", 1, 65535);
        target.port = port.value ? static_cast<uint16_t>(*port.value)
                                 : (target.tls == TlsMode::implicit ? kSubmissionsPort : kSmtpPort);
        const std::string helo = read_helo(table, path).value.value_or("");
        target.helo = helo.empty() ? defaults.helo : helo;
        const Setting<Duration> interval = read_duration(table, path, "interval");
        const Setting<Duration> timeout = read_duration(table, path, "timeout");
        check_timeout_below_interval(interval, timeout, defaults, path, "from [defaults]");
        target.interval = interval.value.value_or(defaults.interval.value_or(kDefaultInterval));
        target.timeout = timeout.value.value_or(defaults.timeout.value_or(kDefaultTimeout));
        const Setting<std::vector<std::string>> probes = read_probes(table, path);
        target.probes = probes.value.value_or(defaults.probes);
        const std::string tls_options_path = child_key(path, "tls_options");
        target.tls_options =
            read_tls_options(read_section(table, path, "tls_options"), tls_options_path);
        if (const toml::table* auth = find_section(table, path, "auth")) {
            target.auth = read_auth(*auth, child_key(path, "auth"));
        }
        target.allow_plaintext_auth =
            read<bool>(table, path, "allow_plaintext_auth").value.value_or(false);
        const Setting<Expectation> expect =
            read_choice(table, path, "expect", kExpectations, "expectation");
        target.expect = expect.value.value_or(Expectation::success);
        if (const toml::table* message = find_section(table, path, "message")) {
            target.message = read_message(*message, child_key(path, "message"));
        }
        if (const toml::table* roundtrip = find_section(table, path, "roundtrip")) {
            target.roundtrip =
                read_roundtrip(*roundtrip, child_key(path, "roundtrip"), target.host);
        }
        check_probe_requirements(table, path, probes, target.probes, expect);
        return target;
    }

    // Each probe in kProbeTables needs its table, and a negative test needs the auth probe.
    // Skipped when the target's own probes are invalid (already reported); a present but
    // invalid table counts as present, so it is reported once, not again here.
    void check_probe_requirements(const toml::table& table, const std::string& path,
                                  const Setting<std::vector<std::string>>& own_probes,
                                  const std::vector<std::string>& probes,
                                  const Setting<Expectation>& expect) {
        if (own_probes.present() && !own_probes.value) return;
        const auto runs = [&](std::string_view probe) {
            return std::find(probes.begin(), probes.end(), probe) != probes.end();
        };
        for (const ProbeTable& needed : kProbeTables) {
            if (!runs(needed.probe) || table.contains(needed.key)) continue;
            const std::string problem = "probe " + in_quotes(needed.probe) + " needs a [targets." +
                                        std::string(needed.key) + "] table";
            if (own_probes.present()) {
                error(own_probes.node->source(), child_key(path, "probes"), problem);
            } else {
                error(table.source(), child_key(path, needed.key),
                      problem + " (probes from [defaults])");
            }
        }
        if (const toml::node* mode = table.at_path("message.mode").node();
            runs(kRoundtripProbe) && mode != nullptr && mode->value<std::string>() == "rcpt") {
            error(mode->source(), child_key(child_key(path, "message"), "mode"),
                  in_quotes("rcpt") + " sends no message, and the " + in_quotes(kRoundtripProbe) +
                      " probe follows one: use mode = " + in_quotes("data"));
        }
        if (expect.value == Expectation::reject && !runs(kAuthProbe)) {
            error(expect.node->source(), child_key(path, "expect"),
                  in_quotes("reject") + " needs the " + in_quotes(kAuthProbe) +
                      " probe in this target's probes");
        }
    }

    AuthConfig read_auth(const toml::table& table, const std::string& path) {
        check_known_keys(table, path, kAuthKeys);
        return read_credentials(table, path, kSmtpSasl);
    }

    // The keys of kAuthKeys, in [targets.auth] or in another table that logs in (whose own
    // check_known_keys covers them): a user name and exactly one secret source.
    AuthConfig read_credentials(const toml::table& table, const std::string& path,
                                const SaslProfile& sasl) {
        AuthConfig auth;
        auth.username = checked(read_required_string(table, path, "username"), path, "username",
                                check_no_control)
                            .value.value_or("");
        const Setting<AuthMechanism> mechanism = read_mechanism(table, path, sasl);
        auth.mechanism = mechanism.value.value_or(AuthMechanism::automatic);
        auth.password_env = checked(read_non_empty_string(table, path, "password_env"), path,
                                    "password_env", check_password_env)
                                .value.value_or("");
        auth.password_file = checked(read_path(table, path, "password_file"), path, "password_file",
                                     secret_holding_file("password file"))
                                 .value.value_or("");
        // Not checked on disk: another process keeps it fresh, and it is read at every run.
        auth.token_file = read_path(table, path, "token_file").value.value_or("");
        read_refresh_flow(table, path, auth);
        check_credential_source(table, path, mechanism);
        return auth;
    }

    // One of the protocol's mechanisms; one the agent has only for another protocol is named as
    // such rather than as unknown.
    Setting<AuthMechanism> read_mechanism(const toml::table& table, std::string_view path,
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
    void read_refresh_flow(const toml::table& table, const std::string& path, AuthConfig& auth) {
        auth.token_url = checked(read_non_empty_string(table, path, "token_url"), path, "token_url",
                                 check_token_url)
                             .value.value_or("");
        auth.client_id = checked(read_non_empty_string(table, path, "client_id"), path, "client_id",
                                 check_no_control)
                             .value.value_or("");
        auth.refresh_token_file =
            checked(read_path(table, path, "refresh_token_file"), path, "refresh_token_file",
                    secret_holding_file("refresh token file"))
                .value.value_or("");
        auth.client_secret_file =
            checked(read_path(table, path, "client_secret_file"), path, "client_secret_file",
                    secret_holding_file("client secret file"))
                .value.value_or("");
        auth.scope =
            checked(read<std::string>(table, path, "scope"), path, "scope", check_no_control)
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
    void check_credential_source(const toml::table& table, const std::string& path,
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
        for (size_t i = 1; i < given.size(); ++i) {
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

    MessageConfig read_message(const toml::table& table, const std::string& path) {
        check_known_keys(table, path, kMessageKeys);
        MessageConfig message;
        message.from =
            checked(read_required_string(table, path, "from"), path, "from", check_address)
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
        return message;
    }

    // Name = value, in the table's order (toml++ keeps keys sorted, byte by byte). A bad name
    // is reported at the name, a bad value at the value.
    std::vector<std::pair<std::string, std::string>> read_headers(const toml::table& table,
                                                                  const std::string& path) {
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

    // The IMAP mailbox the roundtrip probe follows its message into. Its defaults are
    // RoundtripConfig's, except for those that depend on the target or on another key.
    RoundtripConfig read_roundtrip(const toml::table& table, const std::string& path,
                                   const std::string& target_host) {
        check_known_keys(table, path, kRoundtripKeys);
        RoundtripConfig roundtrip;
        roundtrip.imap_host =
            checked(read_non_empty_string(table, path, "imap_host"), path, "imap_host", check_host)
                .value.value_or(target_host);
        roundtrip.imap_tls = read_choice(table, path, "imap_tls", kTlsModes, "TLS mode")
                                 .value.value_or(TlsMode::implicit);
        const Setting<int64_t> port = read_integer(table, path, "imap_port", 1, 65535);
        roundtrip.imap_port =
            port.value ? static_cast<uint16_t>(*port.value)
                       : (roundtrip.imap_tls == TlsMode::implicit ? kImapsPort : kImapPort);
        roundtrip.tls_options = read_tls_options(read_section(table, path, "tls_options"),
                                                 child_key(path, "tls_options"));
        roundtrip.auth = read_credentials(table, path, kImapSasl);
        roundtrip.mailbox =
            checked(read<std::string>(table, path, "mailbox"), path, "mailbox", check_mailbox_name)
                .value.value_or(roundtrip.mailbox);
        roundtrip.junk_folders = read_string_list(table, path, "junk_folders", "folder names",
                                                  check_mailbox_name, EmptyList::allowed)
                                     .value;
        const Setting<Duration> timeout = read_duration(table, path, "timeout");
        roundtrip.timeout = timeout.value.value_or(roundtrip.timeout);
        roundtrip.cleanup = read_choice(table, path, "cleanup", kCleanupModes, "cleanup mode")
                                .value.value_or(CleanupMode::delete_message);
        roundtrip.idle = read<bool>(table, path, "idle").value.value_or(true);
        roundtrip.prompt_checks = read<bool>(table, path, "prompt_checks").value.value_or(true);
        const Setting<Duration> poll_interval = checked(read_duration(table, path, "poll_interval"),
                                                        path, "poll_interval", check_poll_interval);
        roundtrip.poll_interval = poll_interval.value.value_or(roundtrip.poll_interval);
        check_poll_below_timeout(poll_interval, timeout, roundtrip, path);
        roundtrip.authserv_id = checked(read_non_empty_string(table, path, "authserv_id"), path,
                                        "authserv_id", check_authserv_id)
                                    .value.value_or("");
        return roundtrip;
    }

    // A poll interval not shorter than the timeout would look into the mailbox at most once. The
    // error points at poll_interval if the table sets it, else at the timeout.
    void check_poll_below_timeout(const Setting<Duration>& poll_interval,
                                  const Setting<Duration>& timeout,
                                  const RoundtripConfig& roundtrip, std::string_view path) {
        if (!poll_interval.present() && !timeout.present()) return;
        if ((poll_interval.present() && !poll_interval.value) ||
            (timeout.present() && !timeout.value) || roundtrip.poll_interval < roundtrip.timeout) {
            return;
        }
        const auto describe = [](const Setting<Duration>& setting, Duration value) {
            return format_duration(value) + (setting.present() ? "" : " (the default)");
        };
        const bool blame_poll = poll_interval.present();
        error((blame_poll ? poll_interval : timeout).node->source(),
              child_key(path, blame_poll ? "poll_interval" : "timeout"),
              "poll_interval " + describe(poll_interval, roundtrip.poll_interval) +
                  " must be shorter than timeout " + describe(timeout, roundtrip.timeout));
    }

    TlsOptions read_tls_options(const toml::table& table, std::string_view path) {
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

    std::string file_;
    fs::path base_directory_;  // absolute; relative paths in the file are resolved against it
    std::vector<ConfigError> errors_;
};

// The directory holding the config file, absolute (the current directory for a bare name).
fs::path directory_of(const std::string& config_path) {
    std::error_code ignored;
    const fs::path absolute = fs::absolute(config_path.empty() ? "." : config_path, ignored);
    return config_path.empty() ? absolute : absolute.parent_path();
}

}  // namespace

ConfigResult load_config_string(std::string_view text, const std::string& path_for_errors) {
    ConfigReader reader(path_for_errors, directory_of(path_for_errors));
    ConfigResult result;
    try {
        const toml::table root = toml::parse(text, std::string_view(path_for_errors));
        Config config = reader.read(root);
        result.errors = reader.take_errors();
        if (result.errors.empty()) result.config = std::move(config);
    } catch (const toml::parse_error& parse_error) {
        reader.error(parse_error.source(), "", std::string(parse_error.description()));
        result.errors = reader.take_errors();
    }
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                         return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return result;
}

ConfigResult load_config_file(const std::string& path) {
    std::string problem;
    std::ostringstream contents;
    std::error_code ignored;
    if (fs::is_directory(path, ignored)) {
        problem = "is a directory";
    } else if (std::ifstream file(path, std::ios::binary); !file.is_open()) {
        problem = std::strerror(errno);  // set by the failed open
    } else if (contents << file.rdbuf(); file.bad()) {
        problem = "read error";
    }
    if (problem.empty()) return load_config_string(contents.str(), path);
    ConfigResult result;
    result.errors.push_back({path, 0, 0, "", "cannot read config file: " + problem});
    return result;
}

}  // namespace mailcanary
