// The queue id a server names in its reply to the final dot, from the reply forms of the common
// servers and services. No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailcanary::smtp {

// `text` is the reply's first line after the code ("2.0.0 Ok: queued as 4Q9xYz1ABC"). None when
// it names no id in a known form; the transcript keeps the whole reply either way.
std::optional<std::string> queue_id_from_reply(std::string_view text);

}  // namespace mailcanary::smtp
