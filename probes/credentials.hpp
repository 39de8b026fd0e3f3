// Secrets read from files. Errors say what went wrong with the file, never what it contains.
#pragma once

#include <optional>
#include <string>

namespace mailcanary {

// The file's content with trailing CR/LF trimmed; empty content is an error.
std::optional<std::string> read_secret_file(const std::string& path, std::string& error);

}  // namespace mailcanary
