#include "common/toml_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace mailcanary {

std::optional<std::string> read_config_file(const std::string& path, std::string_view what,
                                            ConfigError& error) {
    std::string problem;
    std::ostringstream contents;
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored)) {
        problem = "is a directory";
    } else if (std::ifstream file(path, std::ios::binary); !file.is_open()) {
        problem = std::strerror(errno);  // set by the failed open
    } else if (contents << file.rdbuf(); file.bad()) {
        problem = "read error";
    }
    if (problem.empty()) return contents.str();
    error = {path, 0, 0, "", "cannot read " + std::string(what) + " file: " + problem};
    return std::nullopt;
}

std::string ConfigError::to_string() const {
    std::string text = file;
    if (line > 0) text += ":" + std::to_string(line) + ":" + std::to_string(column);
    text += ": ";
    if (!key.empty()) text += key + ": ";
    return text + message;
}

namespace {

namespace fs = std::filesystem;

constexpr Duration kLongestDuration = std::chrono::hours(24);
constexpr std::size_t kMaxSuggestionDistance = 2;

std::string type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

// Optimal string alignment distance: edits, counting a swap of neighbours as one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitution = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + substitution});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known) {
    if (auto suggestion = closest_match(key, known)) {
        return "unknown key; did you mean " + in_quotes(*suggestion) + "?";
    }
    return "unknown key; expected one of: " + comma_separated(known);
}

}  // namespace

std::string child_key(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string element_key(std::string_view path, std::size_t zero_based_index) {
    return std::string(path) + "[" + std::to_string(zero_based_index + 1) + "]";
}

bool is_control(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < ' ' || byte == 0x7f;
}

std::string in_quotes(std::string_view text) {
    std::string quoted = "\"";
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (!is_control(c)) {
            quoted += c;
        } else if (c == '\r') {
            quoted += "\\r";
        } else if (c == '\n') {
            quoted += "\\n";
        } else if (c == '\t') {
            quoted += "\\t";
        } else {
            constexpr std::string_view kHex = "0123456789abcdef";
            quoted += "\\x";
            quoted += kHex[byte >> 4];
            quoted += kHex[byte & 0xf];
        }
    }
    return quoted + "\"";
}

std::optional<std::string_view> closest_match(std::string_view text,
                                              std::span<const std::string_view> candidates) {
    std::optional<std::string_view> closest;
    std::size_t closest_distance = kMaxSuggestionDistance + 1;
    for (std::string_view candidate : candidates) {
        const std::size_t distance = edit_distance(text, candidate);
        if (distance < closest_distance) {
            closest = candidate;
            closest_distance = distance;
        }
    }
    return closest;
}

std::string comma_separated(std::span<const std::string_view> items) {
    std::string text;
    for (std::size_t i = 0; i < items.size(); ++i)
        text += (i > 0 ? ", " : "") + std::string(items[i]);
    return text;
}

bool has_control(std::string_view text) {
    return std::any_of(text.begin(), text.end(), is_control);
}

std::pair<std::uint32_t, std::uint32_t> position(const toml::node& node) {
    return {node.source().begin.line, node.source().begin.column};
}

std::optional<std::pair<std::string_view, const toml::node*>> first_given(
    const toml::table& table, std::span<const std::string_view> keys) {
    std::optional<std::pair<std::string_view, const toml::node*>> first;
    for (std::string_view key : keys) {
        const toml::node* node = table.get(key);
        if (node != nullptr && (!first || position(*node) < position(*first->second))) {
            first.emplace(key, node);
        }
    }
    return first;
}

const toml::table& empty_table() {
    static const toml::table table;
    return table;
}

TomlReader::TomlReader(std::string file, std::filesystem::path base_directory)
    : file_(std::move(file)), base_directory_(std::move(base_directory)) {}

ConfigError TomlReader::located(const toml::source_region& where, std::string key,
                                std::string message) const {
    return {file_, where.begin.line, where.begin.column, std::move(key), std::move(message)};
}

void TomlReader::error(const toml::source_region& where, std::string key, std::string message) {
    errors_.push_back(located(where, std::move(key), std::move(message)));
}

void TomlReader::warning(const toml::source_region& where, std::string key, std::string message) {
    warnings_.push_back(located(where, std::move(key), std::move(message)));
}

void TomlReader::check_known_keys(const toml::table& table, std::string_view path,
                                  std::span<const std::string_view> known) {
    for (const auto& [key, node] : table) {
        if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
        error(key.source(), child_key(path, key.str()), unknown_key_message(key.str(), known));
    }
}

const toml::table* TomlReader::find_section(const toml::table& parent, std::string_view path,
                                            std::string_view key) {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
        report_type(*node, child_key(path, key), "a table");
        return nullptr;
    }
    return node->as_table();
}

const toml::table& TomlReader::read_section(const toml::table& parent, std::string_view path,
                                            std::string_view key) {
    const toml::table* section = find_section(parent, path, key);
    return section != nullptr ? *section : empty_table();
}

void TomlReader::report_type(const toml::node& node, const std::string& key,
                             std::string_view expected) {
    error(node.source(), key,
          "expected " + std::string(expected) + ", got " + type_name(node.type()));
}

Setting<std::string> TomlReader::read_non_empty_string(const toml::table& table,
                                                       std::string_view path,
                                                       std::string_view key) {
    return checked(read<std::string>(table, path, key), path, key,
                   [](const std::string& text) -> std::optional<std::string> {
                       if (text.empty()) return "must not be empty";
                       return std::nullopt;
                   });
}

bool TomlReader::require(const toml::table& table, std::string_view path, std::string_view key,
                         std::string_view why) {
    if (table.contains(key)) return true;
    error(table.source(), child_key(path, key), "required key is missing" + std::string(why));
    return false;
}

Setting<std::string> TomlReader::read_required_string(const toml::table& table,
                                                      std::string_view path, std::string_view key) {
    if (!require(table, path, key)) return {};
    return read_non_empty_string(table, path, key);
}

std::string TomlReader::resolve(std::string_view file) const {
    return (base_directory_ / file).lexically_normal().string();
}

Setting<std::string> TomlReader::read_path(const toml::table& table, std::string_view path,
                                           std::string_view key) {
    Setting<std::string> setting = read_non_empty_string(table, path, key);
    if (setting.value) setting.value = resolve(*setting.value);
    return setting;
}

Setting<std::int64_t> TomlReader::read_integer(const toml::table& table, std::string_view path,
                                               std::string_view key, std::int64_t min,
                                               std::int64_t max) {
    return checked(read<std::int64_t>(table, path, key), path, key,
                   [min, max](std::int64_t value) -> std::optional<std::string> {
                       if (value >= min && value <= max) return std::nullopt;
                       return "must be between " + std::to_string(min) + " and " +
                              std::to_string(max) + ", got " + std::to_string(value);
                   });
}

Setting<Duration> TomlReader::read_duration(const toml::table& table, std::string_view path,
                                            std::string_view key) {
    Setting<std::string> text = read<std::string>(table, path, key);
    Setting<Duration> duration{text.node, std::nullopt};
    if (!text.value) return duration;
    duration.value = parse_duration(*text.value);
    if (!duration.value) {
        error(text.node->source(), child_key(path, key),
              "invalid duration " + in_quotes(*text.value) +
                  "; expected e.g. \"30s\", \"1m30s\" or \"250ms\" (units d, h, m, s, ms)");
    } else if (duration.value->count() <= 0) {
        error(text.node->source(), child_key(path, key), "must be greater than 0");
        duration.value.reset();
    } else if (*duration.value > kLongestDuration) {
        // Far beyond any probing need, and keeps clock arithmetic (now + interval) in range.
        error(text.node->source(), child_key(path, key), "must be at most 1d, got " + *text.value);
        duration.value.reset();
    }
    return duration;
}

Setting<std::vector<std::string>> TomlReader::read_string_list(
    const toml::table& table, std::string_view path, std::string_view key, std::string_view what,
    const ElementCheck& check_element, EmptyList empty_list) {
    Setting<std::vector<std::string>> list{table.get(key), std::nullopt};
    if (!list.present()) return list;
    const std::string list_key = child_key(path, key);
    const toml::array* array = list.node->as_array();
    if (array == nullptr) {
        report_type(*list.node, list_key, "an array of " + std::string(what));
        return list;
    }
    if (array->empty() && empty_list == EmptyList::refused) {
        error(list.node->source(), list_key, "must not be empty");
        return list;
    }
    std::vector<std::string> values;
    bool all_valid = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string key_of_element = element_key(list_key, i);
        std::optional<std::string> value = typed<std::string>(element, key_of_element);
        std::optional<std::string> problem;
        if (value) problem = check_element(*value);
        if (value && !problem && std::find(values.begin(), values.end(), *value) != values.end()) {
            problem = "duplicate entry " + in_quotes(*value);
        }
        if (problem) error(element.source(), key_of_element, std::move(*problem));
        all_valid = all_valid && value && !problem;
        if (value) values.push_back(std::move(*value));
    }
    if (all_valid) list.value = std::move(values);
    return list;
}

}  // namespace mailcanary
