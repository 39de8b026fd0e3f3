#include "probes/validators.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/text.hpp"
#include "protocols/credentials.hpp"

namespace mailcanary {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxAddressLength = 254;  // RFC 5321 4.5.3.1.3, less the angle brackets
constexpr std::size_t kMaxSubjectLength = 200;
constexpr std::size_t kMaxHeaderNameLength = 76;
constexpr std::string_view kHttpsScheme = "https://";

}  // namespace

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

std::optional<std::string> check_host(const std::string& host) {
    if (host.find_first_of("[]") != std::string::npos) {
        return "write an IPv6 address without brackets";
    }
    if (has_space_or_control(host)) return "must not contain spaces or control characters";
    return std::nullopt;
}

std::optional<std::string> check_mailbox_name(const std::string& name) {
    if (name.empty()) return "must not be empty";
    if (name.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return "must not contain CR, LF or NUL";
    }
    return std::nullopt;
}

std::optional<std::string> check_authserv_id(const std::string& id) {
    if (has_space_or_control(id)) return "must not contain spaces or control characters";
    // "*.mail.yahoo.com" matches the ids under it; a "*" anywhere else matches nothing.
    const auto star = id.find('*');
    if (star != std::string::npos &&
        (star != 0 || id.size() < 3 || id[1] != '.' || id.find('*', 1) != std::string::npos)) {
        return "may hold a \"*\" only as a leading \"*.\" before a domain (\"*.mail.yahoo.com\")";
    }
    return std::nullopt;
}

std::optional<std::string> check_helo(const std::string& helo) {
    if (has_space_or_control(helo)) return "must not contain spaces or control characters";
    return std::nullopt;
}

std::optional<std::string> check_tls_name(const std::string& name) {
    if (has_space_or_control(name)) return "must not contain spaces or control characters";
    if (name.find('%') != std::string::npos) {
        return "a scoped IPv6 address cannot be checked against a certificate";
    }
    return std::nullopt;
}

std::optional<std::string> check_password_env(const std::string& name) {
    if (name.find('=') != std::string::npos || has_control(name)) {
        return "must be an environment variable name, without '=' or control characters";
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return "environment variable " + in_quotes(name) + " is not set";
    if (*value == '\0') return "environment variable " + in_quotes(name) + " is empty";
    return std::nullopt;
}

std::optional<std::string> check_regular_if_exists(const std::string& file, std::string_view what) {
    std::error_code ignored;
    if (fs::exists(file, ignored) && !fs::is_regular_file(file, ignored)) {
        return std::string(what) + " " + in_quotes(file) + " is not a regular file";
    }
    return std::nullopt;
}

std::optional<std::string> check_readable_file(const std::string& file, std::string_view what) {
    const std::string named = std::string(what) + " " + in_quotes(file);
    std::error_code ignored;
    if (!fs::exists(file, ignored)) return named + " does not exist";
    if (auto problem = check_regular_if_exists(file, what)) return problem;
    if (!std::ifstream(file).is_open()) return named + " is not readable";
    return std::nullopt;
}

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

std::optional<std::string> check_not_world_readable(const std::string& file,
                                                    std::string_view what) {
    std::error_code error;
    const fs::perms perms = fs::status(file, error).permissions();
    if (error || (perms & fs::perms::others_read) == fs::perms::none) return std::nullopt;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(perms & fs::perms::mask));
    return std::string(what) + " " + in_quotes(file) + " can be read by every user (mode " + mode +
           "): make it readable by its owner only (chmod 600), or its group (640)";
}

ElementCheck readable_file(std::string_view what) {
    return [what](const std::string& file) { return check_readable_file(file, what); };
}

ElementCheck secret_holding_file(std::string_view what) {
    return [what](const std::string& file) { return check_secret_holding_file(file, what); };
}

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
    const std::size_t at = address.find('@');
    if (at == std::string::npos || address.find('@', at + 1) != std::string::npos) {
        return invalid("needs exactly one '@'");
    }
    if (at == 0) return invalid("nothing before the '@'");
    if (at + 1 == address.size()) return invalid("no domain after the '@'");
    return std::nullopt;
}

std::optional<std::string> check_header_text(std::string_view text, std::size_t max_length) {
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
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return not_https;
        host = authority.substr(1, close - 1);
        port = authority.substr(close + 1);
        if (!port.empty() && !port.starts_with(':')) return not_https;
    } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon);
    }
    if (host.empty() || (!port.empty() && check_port_text(port.substr(1)))) return not_https;
    return std::nullopt;
}

}  // namespace mailcanary
