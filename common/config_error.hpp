// A problem found in a configuration file, located so that an operator can go straight to it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

// One problem found while loading (an error, or a warning), located in the file.
struct ConfigError {
    std::string file;
    unsigned line = 0;    // 1-based; 0 when the error has no place in the file
    unsigned column = 0;  // 1-based
    std::string key;      // dotted path, e.g. "targets[2].timeout"
    std::string message;

    // "file:line:column: key: message"
    std::string to_string() const;
};

// The whole file at `path`; when it cannot be read, nullopt and an error without a place
// ("cannot read <what> file: No such file or directory").
std::optional<std::string> read_config_file(const std::string& path, std::string_view what,
                                            ConfigError& error);

}  // namespace mailcanary
