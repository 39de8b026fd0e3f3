#include "common/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "common/text.hpp"

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

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto time = std::chrono::system_clock::to_time_t(now);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[96];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));
    return text;
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
    append(line, "ts", timestamp());
    append(line, "level", level_name(level));
    append(line, "msg", message);
    for (const auto& [key, value] : fields) append(line, key, value);
    if (g_format == Format::json) line += '}';
    line += '\n';
    // One write per line keeps lines whole when several processes share stderr.
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mailcanary::log
