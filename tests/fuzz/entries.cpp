#include "fuzz/entries.hpp"

#include <array>

namespace mailcanary::fuzz {

std::span<const Target> targets() {
    static constexpr std::array kTargets = {
        Target{"smtp_reply", smtp_reply},
        Target{"smtp_dialog", smtp_dialog},
        Target{"imap_response", imap_response},
        Target{"imap_dialog", imap_dialog},
        Target{"auth_results", auth_results},
        Target{"mail_headers", mail_headers},
        Target{"config", config},
        Target{"http_request", http_request},
    };
    return kTargets;
}

}  // namespace mailcanary::fuzz
