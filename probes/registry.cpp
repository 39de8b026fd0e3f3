#include "probes/registry.hpp"

#include <algorithm>
#include <array>

#include "probes/accept_probe.hpp"
#include "probes/auth_probe.hpp"
#include "probes/connect_probe.hpp"
#include "probes/imap_probe.hpp"
#include "probes/roundtrip_probe.hpp"

namespace mailcanary {

std::span<const ProbeKind* const> all_probes() {
    static const std::array kKinds{
        &connect_probe(), &auth_probe(), &accept_probe(), &roundtrip_probe(), &imap_probe(),
    };
    return kKinds;
}

const ProbeKind* find_probe(std::string_view name) {
    const auto kinds = all_probes();
    const auto found = std::find_if(kinds.begin(), kinds.end(),
                                    [&](const ProbeKind* kind) { return kind->name() == name; });
    return found == kinds.end() ? nullptr : *found;
}

}  // namespace mailcanary
