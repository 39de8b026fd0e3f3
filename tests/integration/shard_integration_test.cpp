// Shards with the real agent: the flags and [agent] keys together, the targets each agent
// probes, its series, and a reload that keeps the index given on the command line.

#include "agent/shard.hpp"
#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class ShardIntegration : public AgentIntegration {
  protected:
    // `count` targets mx0..mx<count-1>, all at the stack's Postfix, after an [agent] table.
    std::string config(const std::string& agent_table, int count) const {
        std::string text = "[agent]\n" + agent_table + "\n" + header();
        for (int i = 0; i < count; ++i)
            text += target("mx" + std::to_string(i), port("MAILSTACK_SMTP_PORT"), "none");
        return text;
    }

    // The targets of mx0..mx<count-1> that agent `index` of `agents` probes.
    static std::vector<std::string> owned(unsigned index, unsigned agents, int count) {
        std::vector<std::string> names;
        for (int i = 0; i < count; ++i) {
            const std::string name = "mx" + std::to_string(i);
            if (shard_owner(name, agents) == index) names.push_back(name);
        }
        return names;
    }

    // Which of mx0..mx<count-1> have series in `text`.
    static std::vector<std::string> with_series(const std::string& text, int count) {
        std::vector<std::string> names;
        for (int i = 0; i < count; ++i) {
            const std::string name = "mx" + std::to_string(i);
            if (value_of(text, R"(mailcanary_probe_runs_total{probe="connect",target=")" + name +
                                   "\"}") >= 0) {
                names.push_back(name);
            }
        }
        return names;
    }
};

TEST_F(ShardIntegration, EachAgentProbesItsShareAndAReloadKeepsTheFlaggedIndex) {
    AgentProcess agent(dir_, config("shard_count = 3", 24), {}, {"--shard.index=1"});
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto mine = owned(1, 3, 24);
    ASSERT_FALSE(mine.empty());
    auto text = agent.wait_for(each_reported(mine));
    EXPECT_EQ(value_of(text, "mailcanary_targets"), static_cast<double>(mine.size()));
    EXPECT_EQ(value_of(text, R"(mailcanary_shard_info{count="3",index="1"})"), 1);
    EXPECT_EQ(with_series(text, 24), mine);

    // More targets and one more agent: the index stays the flag's, the count is the file's.
    agent.write_config(config("shard_count = 4", 30));
    kill(agent.pid(), SIGHUP);
    text = agent.wait_for([](const std::string& t) {
        return value_of(t, R"(mailcanary_shard_info{count="4",index="1"})") == 1;
    });
    const auto now_mine = owned(1, 4, 30);
    EXPECT_EQ(value_of(text, "mailcanary_targets"), static_cast<double>(now_mine.size()));
    EXPECT_EQ(value_of(text, R"(mailcanary_shard_info{count="3",index="1"})"), -1);
    EXPECT_EQ(with_series(text, 30), now_mine);
}

TEST_F(ShardIntegration, ConfigCheckCountsTheShareAndNamesAWrongFlag) {
    const fs::path file = dir_ / "shards.toml";
    std::ofstream(file) << config("shard_count = 3", 24);
    auto run = run_binary({"--config.file=" + file.string(), "--config.check", "--shard.index=2"},
                          dir_ / "ok.txt");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const std::string share = std::to_string(owned(2, 3, 24).size()) + " in shard 2 of 3";
    EXPECT_NE(run.output.find("(24 targets, " + share + ", 0 warnings)"), std::string::npos)
        << run.output;

    run = run_binary({"--config.file=" + file.string(), "--config.check", "--shard.index=3"},
                     dir_ / "bad.txt");
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("command line: --shard.index: shard index 3 must be less than "
                              "shard_count 3"),
              std::string::npos)
        << run.output;
}

}  // namespace
}  // namespace mailcanary::test
