#include "agent/version.hpp"

namespace mailcanary {

std::string_view version() { return MAILCANARY_VERSION; }
std::string_view revision() { return MAILCANARY_REVISION; }

}  // namespace mailcanary
