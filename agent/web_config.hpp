// The web configuration file (--web.config.file): who may reach the HTTP endpoints and over
// what, in the format of the Prometheus exporter-toolkit, so that the file an operator already
// writes for node_exporter works here too. Parsed and checked once per load; every problem is
// located (file:line:column and the dotted key).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/tls_server.hpp"
#include "common/config_error.hpp"

namespace mailcanary {

struct WebConfig {
    std::string source_path;
    // Its files are absolute, or made so from the web configuration file's folder, as
    // exporter-toolkit does. Empty: plain HTTP.
    std::optional<TlsServerConfig> tls;
    std::shared_ptr<TlsServerContext> tls_context;  // loaded from `tls`'s files
    // User name -> bcrypt hash; empty: no authentication.
    std::map<std::string, std::string, std::less<>> basic_auth_users;
};

struct WebConfigResult {
    std::optional<WebConfig> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
};

// Parses and checks the file, loads the certificate, key and CA files, and checks that every
// hash is a bcrypt hash; every problem found is reported, not only the first.
WebConfigResult load_web_config_file(const std::string& path);
WebConfigResult load_web_config_string(std::string_view text, const std::string& path_for_errors);

// The file at `path` when there is one (empty: none) and it has no errors; its errors are added
// to `errors`.
std::optional<WebConfig> load_web_config(const std::string& path, std::vector<ConfigError>& errors);

}  // namespace mailcanary
