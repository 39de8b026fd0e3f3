// Secrets read from files. Errors say what went wrong with the file, never what it contains.
#pragma once

#include <optional>
#include <string>

namespace mailcanary {

// The file's content with trailing CR/LF trimmed; empty content is an error.
std::optional<std::string> read_secret_file(const std::string& path, std::string& error);

// The installation's secret: read from `path`, or made there on first use (256 random bits, hex,
// readable only by the agent's user). It must outlive restarts: it is how the agent recognises
// the probe messages it sent earlier.
std::optional<std::string> load_or_create_secret(const std::string& path, std::string& error);

}  // namespace mailcanary
