// The table of probes: adding a probe is one file and one line in registry.cpp.
#pragma once

#include <span>
#include <string_view>

namespace mailcanary {

struct ProbeEntry;

std::span<const ProbeEntry> all_probes();
const ProbeEntry* find_probe(std::string_view name);
bool is_known_probe(std::string_view name);

}  // namespace mailcanary
