#include "probes/authserv_id_watch.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace mailcanary {

void AuthservIdWatch::observe(const std::vector<HeaderField>& fields, std::string_view trusted,
                              std::string_view target, Transcript& transcript) {
    const auto ids = authserv_ids(fields);
    if (ids.empty()) return;
    if (std::any_of(ids.begin(), ids.end(),
                    [&](const std::string& id) { return authserv_id_matches(id, trusted); })) {
        misses_ = 0;
        warned_ = false;
        return;
    }
    std::string seen;
    for (const auto& id : ids) {
        if (!seen.empty()) seen += ", ";
        seen += id.empty() ? "(none, as Microsoft writes them)" : id;
    }
    transcript.note("no Authentication-Results from authserv_id " + std::string(trusted) +
                    ", so no verdicts; the message has results from: " + seen);
    if (++misses_ < kMissesBeforeWarning || warned_) return;
    warned_ = true;
    log::warn(
        "authserv_id matches no Authentication-Results header: SPF, DKIM and DMARC "
        "verdicts are dropped",
        {{"target", target},
         {"authserv_id", trusted},
         {"messages", std::to_string(misses_)},
         {"seen", seen}});
}

}  // namespace mailcanary
