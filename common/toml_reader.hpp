// Reading a TOML document into typed settings, every problem located (file:line:column and the
// dotted key) and collected rather than thrown, so one load reports all of them. Knows nothing
// of what the settings mean: the schema (agent/config.cpp) and each probe kind's own table
// reader say which keys exist and check their values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "common/config_error.hpp"
#include "common/duration.hpp"

namespace mailcanary {

// A key as found in a table: absent, present but invalid (already reported), or valid.
template <typename T>
struct Setting {
    const toml::node* node = nullptr;  // null when the key is absent
    std::optional<T> value;            // empty when absent or invalid

    bool present() const { return node != nullptr; }
};

// One accepted spelling of an enumerated setting.
template <typename Enum>
struct Choice {
    std::string_view text;
    Enum value;
};

template <typename Enum>
std::optional<Enum> find_choice(std::span<const Choice<Enum>> choices, std::string_view text) {
    for (const Choice<Enum>& choice : choices) {
        if (choice.text == text) return choice.value;
    }
    return std::nullopt;
}

template <typename Enum, std::size_t N>
std::string_view choice_text(const std::array<Choice<Enum>, N>& choices, Enum value) {
    for (const Choice<Enum>& choice : choices) {
        if (choice.value == value) return choice.text;
    }
    return "";
}

std::string child_key(std::string_view path, std::string_view key);
// Array positions in keys are 1-based: the first target is "targets[1]".
std::string element_key(std::string_view path, std::size_t zero_based_index);
// Control characters are escaped, so that a value quoted in a message cannot break its line.
std::string in_quotes(std::string_view text);
bool is_control(char c);
bool has_control(std::string_view text);
// The candidate within two edits of `text` (a swap of neighbours counts as one), if any.
std::optional<std::string_view> closest_match(std::string_view text,
                                              std::span<const std::string_view> candidates);
std::string comma_separated(std::span<const std::string_view> items);

// `"a", "b" or "c"`
template <typename Enum>
std::string choices_text(std::span<const Choice<Enum>> choices) {
    std::string text;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        text += i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", ");
        text += in_quotes(choices[i].text);
    }
    return text;
}

// The one of `keys` given first in the file, with its value; none when none is given.
std::optional<std::pair<std::string_view, const toml::node*>> first_given(
    const toml::table& table, std::span<const std::string_view> keys);
std::pair<std::uint32_t, std::uint32_t> position(const toml::node& node);

// Checks one list element; returns the problem, if any.
using ElementCheck = std::function<std::optional<std::string>(const std::string&)>;

// Whether a list setting may be given as [] (meaning: none).
enum class EmptyList { refused, allowed };

class TomlReader {
  public:
    // Relative paths in the file are resolved against `base_directory` (absolute).
    TomlReader(std::string file, std::filesystem::path base_directory);

    const std::string& file() const { return file_; }
    std::vector<ConfigError> take_errors() { return std::move(errors_); }
    std::vector<ConfigError> take_warnings() { return std::move(warnings_); }

    void error(const toml::source_region& where, std::string key, std::string message);
    // Something that works but that an operator should fix; it does not stop a load.
    void warning(const toml::source_region& where, std::string key, std::string message);
    void report_type(const toml::node& node, const std::string& key, std::string_view expected);

    // Reports every key of `table` not in `known`, suggesting the closest known one.
    void check_known_keys(const toml::table& table, std::string_view path,
                          std::span<const std::string_view> known);
    // A sub-table; null when absent or not a table (reported).
    const toml::table* find_section(const toml::table& parent, std::string_view path,
                                    std::string_view key);
    // A sub-table; an absent one reads as empty so that every default applies.
    const toml::table& read_section(const toml::table& parent, std::string_view path,
                                    std::string_view key);

    template <typename T>
    std::optional<T> typed(const toml::node& node, const std::string& key) {
        if (const auto* value = node.as<T>()) return value->get();
        report_type(node, key, type_name_of<T>());
        return std::nullopt;
    }

    template <typename T>
    Setting<T> read(const toml::table& table, std::string_view path, std::string_view key) {
        Setting<T> setting{table.get(key), std::nullopt};
        if (setting.present()) setting.value = typed<T>(*setting.node, child_key(path, key));
        return setting;
    }

    // Applies a check to a valid value: a problem is reported and makes the setting invalid.
    template <typename T, typename Check>
    Setting<T> checked(Setting<T> setting, std::string_view path, std::string_view key,
                       Check check) {
        if (!setting.value) return setting;
        if (std::optional<std::string> problem = check(*setting.value)) {
            error(setting.node->source(), child_key(path, key), std::move(*problem));
            setting.value.reset();
        }
        return setting;
    }

    Setting<std::string> read_non_empty_string(const toml::table& table, std::string_view path,
                                               std::string_view key);
    // Reports a missing key at the table that lacks it; true when the key is there. `why`, if
    // any, is appended to the message.
    bool require(const toml::table& table, std::string_view path, std::string_view key,
                 std::string_view why = "");
    Setting<std::string> read_required_string(const toml::table& table, std::string_view path,
                                              std::string_view key);
    // Resolved against the config file's directory (an absolute one is kept) and normalised.
    std::string resolve(std::string_view file) const;
    // A file name, resolved; nothing is checked on disk.
    Setting<std::string> read_path(const toml::table& table, std::string_view path,
                                   std::string_view key);
    Setting<std::int64_t> read_integer(const toml::table& table, std::string_view path,
                                       std::string_view key, std::int64_t min, std::int64_t max);
    // "30s", "1m30s", "250ms": greater than 0 and at most a day.
    Setting<Duration> read_duration(const toml::table& table, std::string_view path,
                                    std::string_view key);

    template <typename Enum, std::size_t N>
    Setting<Enum> read_choice(const toml::table& table, std::string_view path, std::string_view key,
                              const std::array<Choice<Enum>, N>& choices, std::string_view what) {
        Setting<std::string> text = read<std::string>(table, path, key);
        Setting<Enum> choice{text.node, std::nullopt};
        if (!text.value) return choice;
        const std::span<const Choice<Enum>> all(choices);
        choice.value = find_choice(all, *text.value);
        if (!choice.value) {
            error(text.node->source(), child_key(path, key),
                  "unknown " + std::string(what) + " " + in_quotes(*text.value) + "; expected " +
                      choices_text(all));
        }
        return choice;
    }

    // An array of distinct strings, each passing check_element; not empty unless allowed.
    Setting<std::vector<std::string>> read_string_list(const toml::table& table,
                                                       std::string_view path, std::string_view key,
                                                       std::string_view what,
                                                       const ElementCheck& check_element,
                                                       EmptyList empty_list = EmptyList::refused);

  private:
    template <typename T>
    static std::string_view type_name_of() {
        if constexpr (std::is_same_v<T, std::string>) return "a string";
        if constexpr (std::is_same_v<T, std::int64_t>) return "an integer";
        if constexpr (std::is_same_v<T, bool>) return "a boolean";
    }

    ConfigError located(const toml::source_region& where, std::string key,
                        std::string message) const;

    std::string file_;
    std::filesystem::path base_directory_;
    std::vector<ConfigError> errors_;
    std::vector<ConfigError> warnings_;
};

// An empty table, for a section that is absent.
const toml::table& empty_table();

}  // namespace mailcanary
