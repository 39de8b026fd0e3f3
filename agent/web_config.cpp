#include "agent/web_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <set>
#include <tuple>

#include "agent/basic_auth.hpp"
#include "common/toml_reader.hpp"

namespace mailcanary {
namespace {

namespace fs = std::filesystem;

template <typename Value>
struct Named {
    std::string_view name;
    Value value;
};

constexpr std::array<Named<ClientAuth>, 5> kClientAuthTypes{{
    {"NoClientCert", ClientAuth::none},
    {"RequestClientCert", ClientAuth::request},
    {"RequireAnyClientCert", ClientAuth::require_any},
    {"VerifyClientCertIfGiven", ClientAuth::verify_if_given},
    {"RequireAndVerifyClientCert", ClientAuth::require_and_verify},
}};

constexpr std::array<Named<TlsVersion>, 4> kTlsVersions{{
    {"TLS10", TlsVersion::v1_0},
    {"TLS11", TlsVersion::v1_1},
    {"TLS12", TlsVersion::v1_2},
    {"TLS13", TlsVersion::v1_3},
}};

// Keys of exporter-toolkit that mailcanary does not implement, and what to do instead: an error
// rather than silence, so that nobody believes a setting is in force when it is not.
constexpr std::array<Named<std::string_view>, 9> kUnsupported{{
    {"cert", "inline PEM is not supported: put the certificate in a file and use cert_file"},
    {"key", "inline PEM is not supported: put the key in a file and use key_file"},
    {"client_ca", "inline PEM is not supported: put the CAs in a file and use client_ca_file"},
    {"client_allowed_sans", "not supported: issue client certificates from a CA of their own"},
    {"cipher_suites", "not supported: OpenSSL's defaults (the system's policy) apply"},
    {"prefer_server_cipher_suites", "not supported: OpenSSL's defaults apply"},
    {"curve_preferences", "not supported: OpenSSL's defaults apply"},
    {"headers", "not supported: mailcanary adds no response headers"},
    {"rate_limit", "not supported: limit requests in front of the agent if you need to"},
}};

template <typename Value, std::size_t N>
std::vector<std::string_view> names_of(const std::array<Named<Value>, N>& table) {
    std::vector<std::string_view> names;
    names.reserve(N);
    for (const auto& entry : table) names.push_back(entry.name);
    return names;
}

class Reader {
  public:
    Reader(std::string path, std::vector<ConfigError>& errors)
        : path_(std::move(path)), errors_(errors) {}

    void error(const YAML::Mark& mark, const std::string& key, std::string message) {
        const bool placed = mark.line >= 0 && mark.column >= 0;
        errors_.push_back({path_, placed ? static_cast<unsigned>(mark.line) + 1 : 0,
                           placed ? static_cast<unsigned>(mark.column) + 1 : 0, key,
                           std::move(message)});
    }

    // Calls `read(key, name node, value node)` for each entry of the mapping at `key`, after
    // reporting entries whose name is not a string, repeats an earlier one, or is not `known`.
    template <typename Read>
    void each_entry(const YAML::Node& mapping, const std::string& key,
                    std::span<const std::string_view> known, Read read) {
        if (!mapping.IsMap()) {
            error(mapping.Mark(), key, "expected a mapping of keys to values");
            return;
        }
        std::set<std::string, std::less<>> seen;
        for (const auto& entry : mapping) {
            const YAML::Node& name = entry.first;
            if (!name.IsScalar()) {
                error(name.Mark(), key, "expected a key that is a string");
                continue;
            }
            const std::string& text = name.Scalar();
            const std::string entry_key = key.empty() ? text : key + "." + text;
            if (!seen.insert(text).second) {
                error(name.Mark(), entry_key, "repeated key");
                continue;
            }
            if (!known.empty() && !is_known(text, known, name, entry_key)) continue;
            read(entry_key, name, entry.second);
        }
    }

    std::optional<std::string> string_value(const YAML::Node& node, const std::string& key) {
        if (!node.IsScalar() || node.Scalar().empty()) {
            error(node.Mark(), key, "expected a non-empty string");
            return std::nullopt;
        }
        if (has_control(node.Scalar())) {
            error(node.Mark(), key, "control characters are not allowed");
            return std::nullopt;
        }
        return node.Scalar();
    }

    template <typename Value, std::size_t N>
    std::optional<Value> choice(const YAML::Node& node, const std::string& key,
                                const std::array<Named<Value>, N>& table) {
        const auto text = string_value(node, key);
        if (!text) return std::nullopt;
        for (const auto& entry : table) {
            if (entry.name == *text) return entry.value;
        }
        const auto names = names_of(table);
        error(node.Mark(), key, in_quotes(*text) + " is not one of " + comma_separated(names));
        return std::nullopt;
    }

    // Made absolute against the web configuration file's folder.
    std::optional<std::string> file_value(const YAML::Node& node, const std::string& key) {
        auto text = string_value(node, key);
        if (!text) return std::nullopt;
        return (fs::path(path_).parent_path() / *text).lexically_normal().string();
    }

  private:
    bool is_known(const std::string& text, std::span<const std::string_view> known,
                  const YAML::Node& name, const std::string& entry_key) {
        for (const std::string_view candidate : known) {
            if (candidate == text) return true;
        }
        for (const auto& entry : kUnsupported) {
            if (entry.name == text) {
                error(name.Mark(), entry_key, std::string(entry.value));
                return false;
            }
        }
        if (auto suggestion = closest_match(text, known)) {
            error(name.Mark(), entry_key,
                  "unknown key; did you mean " + in_quotes(*suggestion) + "?");
        } else {
            error(name.Mark(), entry_key,
                  "unknown key; expected one of: " + comma_separated(known));
        }
        return false;
    }

    std::string path_;
    std::vector<ConfigError>& errors_;
};

constexpr std::array<std::string_view, 3> kTopKeys{"tls_server_config", "http_server_config",
                                                   "basic_auth_users"};
constexpr std::array<std::string_view, 6> kTlsKeys{
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"};
constexpr std::array<std::string_view, 1> kHttpServerKeys{"http2"};

struct TlsMarks {
    YAML::Mark section, cert_file, key_file, client_ca_file, client_auth_type, max_version;
};

std::optional<TlsServerConfig> read_tls(Reader& reader, const YAML::Node& section,
                                        TlsMarks& marks) {
    TlsServerConfig tls;
    bool valid = true;
    marks.section = section.Mark();
    reader.each_entry(
        section, "tls_server_config", kTlsKeys,
        [&](const std::string& key, const YAML::Node& name, const YAML::Node& value) {
            const std::string& field = name.Scalar();
            if (field == "cert_file" || field == "key_file" || field == "client_ca_file") {
                const auto path = reader.file_value(value, key);
                valid = valid && path;
                std::string& target = field == "cert_file"  ? tls.cert_file
                                      : field == "key_file" ? tls.key_file
                                                            : tls.client_ca_file;
                YAML::Mark& mark = field == "cert_file"  ? marks.cert_file
                                   : field == "key_file" ? marks.key_file
                                                         : marks.client_ca_file;
                target = path.value_or("");
                mark = value.Mark();
            } else if (field == "client_auth_type") {
                const auto type = reader.choice(value, key, kClientAuthTypes);
                valid = valid && type;
                tls.client_auth = type.value_or(ClientAuth::none);
                marks.client_auth_type = value.Mark();
            } else {
                const auto version = reader.choice(value, key, kTlsVersions);
                valid = valid && version;
                (field == "min_version" ? tls.min_version : tls.max_version) =
                    version.value_or(TlsVersion::v1_2);
                if (field == "max_version") marks.max_version = value.Mark();
            }
        });
    if (!section.IsMap()) return std::nullopt;
    if (tls.cert_file.empty() && valid) {
        reader.error(marks.section, "tls_server_config", "cert_file is required");
        valid = false;
    }
    if (tls.key_file.empty() && valid) {
        reader.error(marks.section, "tls_server_config", "key_file is required");
        valid = false;
    }
    if (!valid) return std::nullopt;
    const bool verifies = tls.client_auth == ClientAuth::verify_if_given ||
                          tls.client_auth == ClientAuth::require_and_verify;
    if (verifies && tls.client_ca_file.empty()) {
        reader.error(marks.client_auth_type, "tls_server_config.client_auth_type",
                     "verifying client certificates needs client_ca_file");
        return std::nullopt;
    }
    if (!tls.client_ca_file.empty() && tls.client_auth == ClientAuth::none) {
        reader.error(marks.client_ca_file, "tls_server_config.client_ca_file",
                     "client_ca_file is set but client_auth_type is NoClientCert: set "
                     "client_auth_type (RequireAndVerifyClientCert to require a certificate)");
        return std::nullopt;
    }
    if (tls.min_version > tls.max_version) {
        reader.error(marks.max_version, "tls_server_config.max_version",
                     "is lower than min_version");
        return std::nullopt;
    }
    return tls;
}

void read_users(Reader& reader, const YAML::Node& section, WebConfig& config) {
    reader.each_entry(section, "basic_auth_users", {},
                      [&](const std::string& key, const YAML::Node& name, const YAML::Node& value) {
                          const std::string& user = name.Scalar();
                          if (user.find(':') != std::string::npos || has_control(user)) {
                              reader.error(
                                  name.Mark(), key,
                                  "a user name cannot hold ':' or control characters (Basic "
                                  "authentication could not carry it)");
                              return;
                          }
                          const auto hash = reader.string_value(value, key);
                          if (!hash) return;
                          if (auto problem = bcrypt_hash_problem(*hash)) {
                              reader.error(value.Mark(), key, *problem);
                              return;
                          }
                          config.basic_auth_users.emplace(user, *hash);
                      });
}

void load_tls_files(Reader& reader, const TlsMarks& marks, WebConfig& config) {
    TlsSetupError problem;
    config.tls_context = TlsServerContext::load(*config.tls, problem);
    if (config.tls_context) return;
    const YAML::Mark& mark = problem.key == "cert_file"  ? marks.cert_file
                             : problem.key == "key_file" ? marks.key_file
                                                         : marks.client_ca_file;
    reader.error(mark, "tls_server_config." + problem.key, problem.message);
}

}  // namespace

WebConfigResult load_web_config_string(std::string_view text, const std::string& path_for_errors) {
    WebConfigResult result;
    Reader reader(path_for_errors, result.errors);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& problem) {
        reader.error(problem.mark, "", "not valid YAML: " + problem.msg);
        return result;
    }
    WebConfig config;
    config.source_path = path_for_errors;
    if (root.IsNull()) {  // an empty file: exporter-toolkit serves plain HTTP without users
        result.config = std::move(config);
        return result;
    }
    TlsMarks marks;
    reader.each_entry(
        root, "", kTopKeys,
        [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
            if (value.IsNull()) return;  // "tls_server_config:" with nothing under it
            if (key == "tls_server_config") {
                config.tls = read_tls(reader, value, marks);
            } else if (key == "basic_auth_users") {
                read_users(reader, value, config);
            } else {
                // HTTP/2 is not served; a scrape speaks HTTP/1.1 either way, so "http2: true" in a
                // file shared with other exporters is no reason to refuse it.
                reader.each_entry(
                    value, key, kHttpServerKeys,
                    [&](const std::string& entry_key, const YAML::Node&, const YAML::Node& http2) {
                        bool ignored = false;
                        if (!http2.IsScalar() || !YAML::convert<bool>::decode(http2, ignored))
                            reader.error(http2.Mark(), entry_key, "expected true or false");
                    });
            }
        });
    if (result.errors.empty() && config.tls) load_tls_files(reader, marks, config);
    if (result.errors.empty()) result.config = std::move(config);
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                         return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return result;
}

WebConfigResult load_web_config_file(const std::string& path) {
    ConfigError error;
    if (auto contents = read_config_file(path, "web config", error))
        return load_web_config_string(*contents, path);
    return {std::nullopt, {std::move(error)}};
}

std::optional<WebConfig> load_web_config(const std::string& path,
                                         std::vector<ConfigError>& errors) {
    if (path.empty()) return std::nullopt;
    auto loaded = load_web_config_file(path);
    errors.insert(errors.end(), loaded.errors.begin(), loaded.errors.end());
    return std::move(loaded.config);
}

}  // namespace mailcanary
