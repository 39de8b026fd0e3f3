// Which addresses of a host name a connection may use.
#pragma once

namespace mailcanary {

// any: every address the lookup returned, in its order; v4 or v6: only those of that family.
enum class IpFamily { any, v4, v6 };

}  // namespace mailcanary
