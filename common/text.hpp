// ASCII text helpers shared by the protocol code: mail protocols are case-insensitive in ASCII
// only, so the locale never takes part.
#pragma once

#include <string>
#include <string_view>

namespace mailcanary {

bool iequals(std::string_view a, std::string_view b);
std::string to_upper(std::string_view text);

}  // namespace mailcanary
