#include "agent/shard.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailcanary {
namespace {

std::vector<std::string> target_names(std::size_t count) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < count; ++i)
        names.push_back("mx" + std::to_string(i) + ".customer-" + std::to_string(i % 37) +
                        ".example");
    return names;
}

// Published FNV-1a 64 vectors, then scores and owners computed from the documented definition
// (docs/scaling.md) outside this code: a change to the hash, which would move targets between
// agents on an upgrade, fails here.
TEST(Shard, HashIsPinned) {
    EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325u);
    EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cu);
    EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8u);
    EXPECT_EQ(rendezvous_score("mx1", 0), 0xd0b017d2d50b17c9u);
    EXPECT_EQ(rendezvous_score("mx1", 1), 0x445762710d61b66eu);
    EXPECT_EQ(rendezvous_score("smtp.example.com", 7), 0xe4e17ba15e748912u);
    EXPECT_EQ(shard_owner("mx2", 2), 1u);
    EXPECT_EQ(shard_owner("mx2", 8), 5u);
    EXPECT_EQ(shard_owner("imap.example.net", 5), 3u);
    EXPECT_EQ(shard_owner("smtp.example.com", 8), 6u);
}

TEST(Shard, AgentsTogetherProbeEveryTargetExactlyOnce) {
    const auto names = target_names(500);
    for (unsigned count = 1; count <= 8; ++count) {
        std::vector<unsigned> per_agent(count);
        for (const auto& name : names) {
            unsigned owners = 0;
            for (unsigned index = 0; index < count; ++index) {
                if (owns(Shard{index, count}, name)) {
                    ++owners;
                    ++per_agent[index];
                }
            }
            EXPECT_EQ(owners, 1u) << name << " with " << count << " agents";
        }
        // Each agent gets about its share: within 35% of 500/count.
        const double share = 500.0 / count;
        for (unsigned index = 0; index < count; ++index) {
            EXPECT_NEAR(per_agent[index], share, share * 0.35)
                << "agent " << index << " of " << count;
        }
    }
}

TEST(Shard, GrowingMovesOnlyTheTargetsTheNewAgentTakes) {
    const auto names = target_names(2000);
    for (unsigned count = 1; count <= 8; ++count) {
        std::size_t moved = 0;
        for (const auto& name : names) {
            const unsigned before = shard_owner(name, count);
            const unsigned after = shard_owner(name, count + 1);
            if (before == after) continue;
            ++moved;
            EXPECT_EQ(after, count) << name << ": moved between two agents that both stay";
        }
        const double expected = 2000.0 / (count + 1);
        EXPECT_NEAR(static_cast<double>(moved), expected, expected * 0.2)
            << "going from " << count << " to " << count + 1 << " agents";
    }
}

TEST(Shard, OneAgentOwnsEverything) {
    EXPECT_TRUE(owns(Shard{}, "anything"));
    EXPECT_EQ(shard_owner("anything", 1), 0u);
}

TEST(Shard, IndexAndCountSyntax) {
    std::string problem;
    EXPECT_EQ(parse_shard_index("3", problem), ShardIndexSetting{3u});
    EXPECT_EQ(parse_shard_index("from-hostname", problem), ShardIndexSetting{});
    for (const char* bad : {"", "-1", "+1", "1a", " 1", "10000", "99999999999", "hostname"}) {
        problem.clear();
        EXPECT_FALSE(parse_shard_index(bad, problem)) << bad;
        EXPECT_NE(problem.find("from 0 to 9999"), std::string::npos) << problem;
    }
    EXPECT_EQ(parse_shard_count("1"), 1u);
    EXPECT_EQ(parse_shard_count("10000"), 10000u);
    for (const char* bad : {"", "0", "-2", "10001", "2x", "two"})
        EXPECT_FALSE(parse_shard_count(bad)) << bad;
}

TEST(Shard, OrdinalOfHostName) {
    EXPECT_EQ(ordinal_of_host_name("mailcanary-0"), 0u);
    EXPECT_EQ(ordinal_of_host_name("mailcanary-shard-12"), 12u);
    EXPECT_FALSE(ordinal_of_host_name("mailcanary"));
    EXPECT_FALSE(ordinal_of_host_name("mailcanary-"));
    EXPECT_FALSE(ordinal_of_host_name("mailcanary-7f9c"));
    EXPECT_FALSE(ordinal_of_host_name("-3"));
    EXPECT_FALSE(ordinal_of_host_name("host-99999999999"));
}

}  // namespace
}  // namespace mailcanary
