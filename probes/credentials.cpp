#include "probes/credentials.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mailcanary {

std::optional<std::string> read_secret_file(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream content;
    content << in.rdbuf();
    std::string secret = content.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) {
        error = path + " is empty";
        return std::nullopt;
    }
    return secret;
}

}  // namespace mailcanary
