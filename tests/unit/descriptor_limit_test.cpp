#include "agent/descriptor_limit.hpp"

#include <sys/resource.h>

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

// The figures docs/configuration.md gives ("How many runs at once").
TEST(DefaultMaxConcurrentProbes, IsHalfTheDescriptorsLeftAfterTheAgentsOwn) {
    EXPECT_EQ(default_max_concurrent_probes(1024), 352u);  // a hard limit of 1,024
    EXPECT_EQ(default_max_concurrent_probes(4096), 1888u);
    EXPECT_EQ(default_max_concurrent_probes(65536), 32608u);
    EXPECT_EQ(default_max_concurrent_probes(524288), 100000u);  // systemd's hard limit: capped
    EXPECT_EQ(default_max_concurrent_probes(256), 64u);  // too few to set 320 aside: half of them
    EXPECT_EQ(default_max_concurrent_probes(1), 1u);
    EXPECT_EQ(default_max_concurrent_probes(0), 1u);
}

TEST(DescriptorsForRuns, AreWhatTheAgentsOwnAndHttpLeave) {
    EXPECT_EQ(descriptors_for_runs(1024), 704u);
    EXPECT_EQ(descriptors_for_runs(256), 128u);
    EXPECT_EQ(descriptors_for_runs(0), 0u);
}

TEST(DescriptorLimit, IsRaisedToTheHardLimit) {
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    ASSERT_GT(limit.rlim_max, 64u) << "cannot lower the soft limit below a hard limit this low";
    rlimit lowered = limit;
    lowered.rlim_cur = 64;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    ASSERT_EQ(descriptor_limit(), 64u);
    std::string problem;
    EXPECT_EQ(raise_descriptor_limit(problem), limit.rlim_max);
    EXPECT_EQ(problem, "");
    EXPECT_EQ(descriptor_limit(), limit.rlim_max);
}

}  // namespace
}  // namespace mailcanary
