#include "protocols/credentials.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <array>
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

std::optional<std::string> load_or_create_secret(const std::string& path, std::string& error) {
    std::array<unsigned char, 32> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
        error = "no randomness to make a secret";
        return std::nullopt;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string secret;
    for (const unsigned char byte : random) {
        secret += kHex[byte >> 4];
        secret += kHex[byte & 15];
    }
    secret += '\n';
    // O_EXCL: never overwrite a secret that appeared meanwhile (another agent, a restore).
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        const bool written =
            ::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size());
        const bool closed = ::close(fd) == 0;
        if (!written || !closed) {
            error = "cannot write " + path + ": " + std::strerror(errno);
            ::unlink(path.c_str());
            return std::nullopt;
        }
    } else if (errno != EEXIST) {
        error = "cannot create " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    return read_secret_file(path, error);
}

}  // namespace mailcanary
