#include "probes/registry.hpp"

#include <algorithm>
#include <array>

#include "probes/accept_probe.hpp"
#include "probes/auth_probe.hpp"
#include "probes/connect_probe.hpp"
#include "probes/probe.hpp"
#include "probes/roundtrip_probe.hpp"

namespace mailcanary {
namespace {

// Adding a probe: one file with its run function, one line here.
const std::array kProbes = {
    ProbeEntry{"connect", &run_connect_probe, nullptr},
    ProbeEntry{"auth", &run_auth_probe, nullptr},
    ProbeEntry{"accept", &run_accept_probe, nullptr},
    // Runs overlap: each waits for its own message while the next is sent.
    ProbeEntry{"roundtrip", &run_roundtrip_probe, &roundtrip_runs_in_flight},
};

}  // namespace

std::span<const ProbeEntry> all_probes() { return kProbes; }

const ProbeEntry* find_probe(std::string_view name) {
    const auto* found = std::find_if(kProbes.begin(), kProbes.end(),
                                     [&](const ProbeEntry& entry) { return entry.name == name; });
    return found == kProbes.end() ? nullptr : found;
}

bool is_known_probe(std::string_view name) { return find_probe(name) != nullptr; }

}  // namespace mailcanary
