#include "common/log.hpp"

#include "common/duration.hpp"
#include "common/json_writer.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace mailcanary::log {
namespace {

Level g_minimum = Level::info;
Format g_format = Format::logfmt;

std::string_view level_name(Level level) {
    switch (level) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warn";
        case Level::error:
            return "error";
    }
    return "info";
}

void append_logfmt(std::string& out, std::string_view key, std::string_view value) {
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    const bool plain =
        !value.empty() && value.find_first_of(" =\"\\\n\r\t") == std::string_view::npos;
    if (plain) {
        out += value;
    } else {
        out += '"';
        append_json_escaped(out, value);
        out += '"';
    }
}

void append_json(std::string& out, std::string_view key, std::string_view value) {
    out += out.empty() ? "{\"" : ",\"";
    append_json_escaped(out, key);
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
    for (const Level level : {Level::debug, Level::info, Level::warn, Level::error}) {
        if (text == level_name(level)) return level;
    }
    return std::nullopt;
}

std::optional<Format> parse_format(std::string_view text) {
    if (text == "logfmt") return Format::logfmt;
    if (text == "json") return Format::json;
    return std::nullopt;
}

void configure(Level minimum, Format format) {
    g_minimum = minimum;
    g_format = format;
}

bool enabled(Level level) { return level >= g_minimum; }

void write(Level level, std::string_view message, Fields fields) {
    if (!enabled(level)) return;
    const auto append = g_format == Format::json ? append_json : append_logfmt;
    std::string line;
    append(line, "ts", utc_timestamp(std::chrono::system_clock::now()));
    append(line, "level", level_name(level));
    append(line, "msg", message);
    for (const auto& [key, value] : fields) append(line, key, value);
    if (g_format == Format::json) line += '}';
    line += '\n';
    // One write per line keeps lines whole when several processes share stderr.
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mailcanary::log
