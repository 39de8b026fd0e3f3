// Structured logging to stderr, as logfmt or JSON lines.
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>

namespace mailcanary::log {

enum class Level { debug, info, warn, error };
enum class Format { logfmt, json };

std::optional<Level> parse_level(std::string_view text);
std::optional<Format> parse_format(std::string_view text);

void configure(Level minimum, Format format);
bool enabled(Level level);

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;
void write(Level level, std::string_view message, Fields fields = {});

inline void debug(std::string_view message, Fields fields = {}) {
    if (enabled(Level::debug)) write(Level::debug, message, fields);
}
inline void info(std::string_view message, Fields fields = {}) {
    write(Level::info, message, fields);
}
inline void warn(std::string_view message, Fields fields = {}) {
    write(Level::warn, message, fields);
}
inline void error(std::string_view message, Fields fields = {}) {
    write(Level::error, message, fields);
}

}  // namespace mailcanary::log
