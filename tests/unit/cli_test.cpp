#include "agent/cli.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

namespace mailcanary {
namespace {

CliResult parse(std::vector<const char*> args) { return parse_cli(args); }

TEST(Cli, Defaults) {
    const auto result = parse({});
    ASSERT_TRUE(result.options);
    EXPECT_EQ(result.options->config_file, "config/mailcanary.toml");
    EXPECT_FALSE(result.options->config_check);
    EXPECT_TRUE(result.options->listen_addresses.empty());
    EXPECT_EQ(result.options->log_level, log::Level::info);
    EXPECT_EQ(result.options->log_format, log::Format::logfmt);
}

TEST(Cli, BothValueFormsAndRepeatedListenAddresses) {
    const auto result =
        parse({"--config.file", "a.toml", "--web.listen-address=127.0.0.1:9000",
               "--web.listen-address", "[::1]:9000", "--log.level=debug", "--log.format", "json",
               "--config.check", "--probe=mx1", "--web.config.file", "web.yml"});
    ASSERT_TRUE(result.options) << result.error;
    EXPECT_EQ(result.options->config_file, "a.toml");
    EXPECT_EQ(result.options->listen_addresses,
              (std::vector<std::string>{"127.0.0.1:9000", "[::1]:9000"}));
    EXPECT_EQ(result.options->log_level, log::Level::debug);
    EXPECT_EQ(result.options->log_format, log::Format::json);
    EXPECT_TRUE(result.options->config_check);
    EXPECT_EQ(result.options->probe_target, "mx1");
    EXPECT_EQ(result.options->web_config_file, "web.yml");
}

struct BadFlag {
    std::vector<const char*> args;
    const char* error_part;
};

void PrintTo(const BadFlag& bad, std::ostream* out) {
    for (const char* arg : bad.args) *out << arg << ' ';
}

class CliErrors : public testing::TestWithParam<BadFlag> {};

TEST_P(CliErrors, AreClear) {
    const auto result = parse(GetParam().args);
    EXPECT_FALSE(result.options);
    EXPECT_NE(result.error.find(GetParam().error_part), std::string::npos) << result.error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CliErrors,
    testing::Values(
        BadFlag{{"--config.file"}, "--config.file needs a value"},
        BadFlag{{"--config.file="}, "--config.file needs a value"},
        BadFlag{{"--log.level=loud"}, "\"loud\" is not one of debug, info, warn, error"},
        BadFlag{{"--log.format=xml"}, "\"xml\" is not one of logfmt, json"},
        BadFlag{{"--config.check=yes"}, "takes no value"},
        BadFlag{{"--web.config.file="}, "--web.config.file needs a value"},
        BadFlag{{"--web.listen-addres=:1"}, "unknown flag \"--web.listen-addres=:1\""},
        BadFlag{{"--shard.index=-1"},
                "--shard.index: \"-1\" must be a number from 0 to 9999 or "
                "\"from-hostname\""},
        BadFlag{{"--shard.index"}, "--shard.index needs a value"},
        BadFlag{{"--shard.count=0"}, "--shard.count: \"0\" must be a number from 1 to 10000"},
        BadFlag{{"stray"}, "unknown flag \"stray\""}));

TEST(Cli, ShardFlags) {
    auto result = parse({"--shard.index=from-hostname", "--shard.count", "4"});
    ASSERT_TRUE(result.options) << result.error;
    EXPECT_EQ(result.options->shard.index, ShardIndexSetting{});
    EXPECT_EQ(result.options->shard.count, 4u);
    result = parse({"--shard.index", "3"});
    ASSERT_TRUE(result.options) << result.error;
    EXPECT_EQ(result.options->shard.index, ShardIndexSetting{3u});
    EXPECT_EQ(result.options->shard.count, std::nullopt);
}

TEST(Cli, UsageNamesEveryFlag) {
    for (const char* flag : {"--config.file", "--config.check", "--web.listen-address",
                             "--web.config.file", "--log.level", "--log.format", "--probe",
                             "--shard.index", "--shard.count", "--version", "--help"}) {
        EXPECT_NE(usage().find(flag), std::string::npos) << flag;
    }
}

// A command line is on every user's `ps`: a flag about a secret may say where the secret is
// (a file, an environment variable), never hold it. Checked on the flags --help lists, which
// UsageNamesEveryFlag and the man_page test hold to the parser.
bool takes_a_secret_itself(const std::string& help) {
    static const std::regex flag(R"(^\s+(--[a-z.-]+)(=([A-Z_]+))?)");
    static const std::regex about_a_secret("password|secret|token|credential|key",
                                           std::regex::icase);
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (!std::regex_search(line, match, flag) || !match[3].matched) continue;
        const std::string value = match[3];
        const bool names_a_place = value == "PATH" || value == "FILE" || value == "NAME";
        if (std::regex_search(match[1].str() + value, about_a_secret) && !names_a_place) {
            return true;
        }
    }
    return false;
}

TEST(Cli, NoFlagTakesASecretItself) {
    EXPECT_FALSE(takes_a_secret_itself(usage())) << usage();
    EXPECT_TRUE(takes_a_secret_itself("  --auth.password=PASSWORD   the password\n"));
    EXPECT_TRUE(takes_a_secret_itself("  --token=VALUE   a bearer token\n"));
    EXPECT_FALSE(takes_a_secret_itself("  --auth.password-file=PATH   where it is\n"));
}

}  // namespace
}  // namespace mailcanary
