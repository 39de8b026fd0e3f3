// One target list spread over several agents: each agent probes the targets it wins by
// rendezvous hashing of their names, so that every target has exactly one agent and a change in
// the number of agents moves only the targets that must move.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

// The most agents one target list may be spread over.
inline constexpr unsigned kMaxShardCount = 10'000;

// This agent's part: agent `index` of `count` (0 <= index < count).
struct Shard {
    unsigned index = 0;
    unsigned count = 1;

    bool operator==(const Shard&) const = default;
};

// A shard index as written (--shard.index, [agent] shard_index): a number, or "from-hostname"
// for the ordinal that ends the host name (a StatefulSet's pod "mailcanary-3" is agent 3).
struct ShardIndexSetting {
    std::optional<unsigned> number;  // empty: from the host name

    bool operator==(const ShardIndexSetting&) const = default;
};

inline constexpr std::string_view kShardIndexFromHostName = "from-hostname";

// --shard.index and --shard.count, which replace [agent] shard_index and shard_count when given.
struct ShardFlags {
    std::optional<ShardIndexSetting> index;
    std::optional<unsigned> count;
};

// "7" or "from-hostname"; anything else is a problem (returned as an empty optional and text).
std::optional<ShardIndexSetting> parse_shard_index(std::string_view text, std::string& problem);

// "1" to kMaxShardCount; empty for anything else.
std::optional<unsigned> parse_shard_count(std::string_view text);

// The ordinal N at the end of "name-N"; empty when the name does not end so.
std::optional<unsigned> ordinal_of_host_name(std::string_view host_name);

// 64-bit FNV-1a of the bytes of `text` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
std::uint64_t fnv1a64(std::string_view text);

// How much agent `agent` wants the target named `target`: the (agent + 1)-th output of a
// SplitMix64 generator seeded with fnv1a64(target). Integer arithmetic on fixed widths only, so
// every build on every platform agrees; pinned by test vectors.
std::uint64_t rendezvous_score(std::string_view target, unsigned agent);

// The agent of `count` that probes `target`: the highest score, the lowest index on a tie.
unsigned shard_owner(std::string_view target, unsigned count);

inline bool owns(const Shard& shard, std::string_view target) {
    return shard.count <= 1 || shard_owner(target, shard.count) == shard.index;
}

}  // namespace mailcanary
