#pragma once

#include <string_view>

namespace mailcanary {

std::string_view version();
std::string_view revision();  // the git revision built from, or "unknown"

}  // namespace mailcanary
