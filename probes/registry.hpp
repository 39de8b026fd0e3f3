// The table of probe kinds: adding a kind is its own file (or folder) and one line in
// registry.cpp.
#pragma once

#include <span>
#include <string_view>

namespace mailcanary {

class ProbeKind;

std::span<const ProbeKind* const> all_probes();
const ProbeKind* find_probe(std::string_view name);

}  // namespace mailcanary
