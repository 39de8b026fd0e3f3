#include "agent/shard.hpp"

#include <charconv>

namespace mailcanary {
namespace {

// Digits only: no sign, no space, no suffix.
std::optional<unsigned> whole_number(std::string_view text) {
    unsigned number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (text.empty() || error != std::errc{} || end != text.data() + text.size())
        return std::nullopt;
    return number;
}

}  // namespace

std::optional<ShardIndexSetting> parse_shard_index(std::string_view text, std::string& problem) {
    if (text == kShardIndexFromHostName) return ShardIndexSetting{};
    const std::optional<unsigned> number = whole_number(text);
    if (!number || *number >= kMaxShardCount) {
        problem = "must be a number from 0 to " + std::to_string(kMaxShardCount - 1) + " or \"" +
                  std::string(kShardIndexFromHostName) + "\"";
        return std::nullopt;
    }
    return ShardIndexSetting{number};
}

std::optional<unsigned> parse_shard_count(std::string_view text) {
    const std::optional<unsigned> count = whole_number(text);
    if (!count || *count < 1 || *count > kMaxShardCount) return std::nullopt;
    return count;
}

std::optional<unsigned> ordinal_of_host_name(std::string_view host_name) {
    const auto dash = host_name.rfind('-');
    if (dash == std::string_view::npos || dash == 0) return std::nullopt;
    return whole_number(host_name.substr(dash + 1));
}

std::uint64_t fnv1a64(std::string_view text) {
    std::uint64_t hash = 0xcbf29ce484222325;
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3;
    }
    return hash;
}

std::uint64_t rendezvous_score(std::string_view target, unsigned agent) {
    // FNV-1a alone spreads poorly in its high bits for inputs that differ only at the end; the
    // SplitMix64 finaliser mixes every bit of the seed into every bit of the score.
    std::uint64_t z =
        fnv1a64(target) + (static_cast<std::uint64_t>(agent) + 1) * 0x9e3779b97f4a7c15;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
}

unsigned shard_owner(std::string_view target, unsigned count) {
    unsigned owner = 0;
    std::uint64_t best = rendezvous_score(target, 0);
    for (unsigned agent = 1; agent < count; ++agent) {
        const std::uint64_t score = rendezvous_score(target, agent);
        if (score > best) {
            best = score;
            owner = agent;
        }
    }
    return owner;
}

}  // namespace mailcanary
