// ASCII text helpers shared by the protocol code: mail protocols are case-insensitive in ASCII
// only, so the locale never takes part.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace mailcanary {

bool iequals(std::string_view a, std::string_view b);
std::string to_upper(std::string_view text);
std::string to_lower(std::string_view text);
// Without leading and trailing spaces, tabs and line breaks.
std::string_view trim(std::string_view text);
// Where `part` first occurs in `text`, ignoring ASCII case; npos when it does not.
std::size_t find_ignoring_case(std::string_view text, std::string_view part);
// Whether `part` occurs in `text`, ignoring ASCII case.
bool contains_ignoring_case(std::string_view text, std::string_view part);
// Whether any of `parts` occurs in `text`, ignoring ASCII case.
bool contains_any_ignoring_case(std::string_view text, std::span<const std::string_view> parts);

}  // namespace mailcanary
