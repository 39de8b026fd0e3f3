#include "agent/config.hpp"

#include "probes/roundtrip_probe.hpp"
#include "support/file_permissions.hpp"
#include "support/files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace mailcanary {
namespace {

// [targets.roundtrip] as the roundtrip probe read it; null when the target has none.
const RoundtripConfig* roundtrip_of(const TargetConfig& target) {
    return target.probe_options.find<RoundtripConfig>("roundtrip");
}

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::TempDir;

constexpr std::string_view kFile = "test.toml";

// A minimal valid target taking lines 1-3; cases append the field under test on line 4.
constexpr std::string_view kTarget = "[[targets]]\nname = \"mx1\"\nhost = \"mx1.example.net\"\n";

struct ExpectedError {
    unsigned line;
    unsigned column;
    std::string key;
    std::string message_part;  // a substring of the message
};

ConfigResult load(std::string_view text) { return load_config_string(text, std::string(kFile)); }

// One line each, for failure messages.
std::string all_of(const std::vector<ConfigError>& problems) {
    std::string all;
    for (const ConfigError& problem : problems) all += problem.to_string() + "\n";
    return all;
}

std::string target_with(std::string_view fields) {
    return std::string(kTarget) + std::string(fields);
}

void expect_errors(const ConfigResult& result, const std::vector<ExpectedError>& expected) {
    EXPECT_FALSE(result.config.has_value());
    ASSERT_EQ(result.errors.size(), expected.size()) << all_of(result.errors);
    for (size_t i = 0; i < expected.size(); ++i) {
        const ConfigError& error = result.errors[i];
        SCOPED_TRACE(error.to_string());
        EXPECT_EQ(error.file, kFile);
        EXPECT_EQ(error.line, expected[i].line);
        EXPECT_EQ(error.column, expected[i].column);
        EXPECT_EQ(error.key, expected[i].key);
        EXPECT_NE(error.message.find(expected[i].message_part), std::string::npos)
            << "message lacks: " << expected[i].message_part;
    }
}

// A target running the auth probe (line 4), its [targets.auth] on line 5, auth fields from line 6.
std::string auth_target_with(std::string_view auth_fields) {
    return target_with("probes = [\"auth\"]\n[targets.auth]\n") + std::string(auth_fields);
}

// A target running the accept probe (line 4), its [targets.message] on line 5, a valid "from" on
// line 6, message fields from line 7.
std::string message_target_with(std::string_view message_fields) {
    return target_with(
               "probes = [\"accept\"]\n[targets.message]\nfrom = \"canary@example.org\"\n") +
           std::string(message_fields);
}

// As message_target_with, with a valid "to" on line 7 and [targets.message.headers] on line 8;
// header lines from line 9.
std::string headers_target_with(std::string_view header_lines) {
    return message_target_with("to = [\"probe@example.test\"]\n[targets.message.headers]\n") +
           std::string(header_lines);
}

// A target with a valid [targets.roundtrip] (line 4) logging in with a token file (lines 5-6); its
// probes are left alone, so roundtrip fields from line 7 are checked without the probe.
std::string roundtrip_target_with(std::string_view roundtrip_fields) {
    return target_with("[targets.roundtrip]\nusername = \"u\"\ntoken_file = \"/t\"\n") +
           std::string(roundtrip_fields);
}

// An empty [targets.roundtrip] on line 4; fields (credentials included) from line 5.
std::string roundtrip_credentials_with(std::string_view roundtrip_fields) {
    return target_with("[targets.roundtrip]\n") + std::string(roundtrip_fields);
}

// A valid [targets.message] for targets that run the roundtrip probe.
constexpr std::string_view kMessageTable =
    "[targets.message]\nfrom = \"canary@example.org\"\nto = [\"probe@example.net\"]\n";

constexpr const char* kPasswordVariable = "MAILCANARY_TEST_PASSWORD";
constexpr std::string_view kEnvPassword = "env-S3cret-7f3a91";
constexpr std::string_view kFilePassword = "file-S3cret-2c6b04";
constexpr std::string_view kRefreshToken = "1//refresh-S3cret-9d2e17";
constexpr std::string_view kClientSecret = "client-S3cret-4a8c55";
constexpr const char* kNeedsOneCredential =
    "needs one of password_env, password_file, token_file or the OAuth2 refresh flow (token_url, "
    "client_id, refresh_token_file)";

std::string machine_host_name() {
    std::array<char, 256> buffer{};
    if (gethostname(buffer.data(), buffer.size() - 1) != 0 || buffer[0] == '\0') return "localhost";
    return buffer.data();
}

// Sets an environment variable for one test (unsets it for a null value), then restores it.
class ScopedEnv {
  public:
    ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old;
        set(value);
    }
    ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    void set(const char* value) const {
        if (value != nullptr) {
            setenv(name_.c_str(), value, 1);
        } else {
            unsetenv(name_.c_str());
        }
    }

    std::string name_;
    std::optional<std::string> old_;
};

// No error message may carry a secret, whatever else is wrong.
void expect_no_secret_in(const ConfigResult& result) {
    for (const ConfigError& error : result.errors) {
        for (std::string_view secret :
             {kEnvPassword, kFilePassword, kRefreshToken, kClientSecret}) {
            EXPECT_EQ(error.to_string().find(secret), std::string::npos) << error.to_string();
        }
    }
}

TEST(ConfigLoad, DnsServersWithAndWithoutPorts) {
    const ConfigResult result = load(
        "[agent]\ndns_servers = [\"192.0.2.53\", \"127.0.0.1:5353\", \"::1\", \"[::1]:5353\"]\n");
    ASSERT_TRUE(result.errors.empty()) << all_of(result.errors);
    const auto address = [](const char* text) { return boost::asio::ip::make_address(text); };
    EXPECT_EQ(result.config->agent.dns_servers,
              (std::vector<DnsServer>{{address("192.0.2.53"), 53},
                                      {address("127.0.0.1"), 5353},
                                      {address("::1"), 53},
                                      {address("::1"), 5353}}));
    // None: the system's resolv.conf.
    EXPECT_TRUE(load("[agent]\n").config->agent.dns_servers.empty());
}

TEST(ConfigLoad, FullConfigParsesToExpectedStructs) {
    const ConfigResult result = load(R"([agent]
listen_addresses = ["127.0.0.1:9725", "[::1]:9725", ":9999"]
max_concurrent_probes = 64

[metrics]
duration_buckets = [0.1, 1, 2.5]
phase_histograms = false

[defaults]
interval = "1m"
timeout = "20s"
helo = "probe.example.net"
tls = "none"
probes = ["connect"]

[[targets]]
name = "mx1"
host = "mx1.example.net"

[[targets]]
name = "submissions"
host = "2001:db8::1"
tls = "implicit"
helo = "other.example"
interval = "15s"
timeout = "5s"
probes = ["connect"]
[targets.tls_options]
server_name = "mail.example.net"
insecure_skip_verify = true
min_version = "1.3"

[[targets]]
name = "custom-port"
host = "192.0.2.7"
port = 2525
tls = "starttls"
interval = "1h"
)");
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    ASSERT_TRUE(result.config.has_value());
    const Config& config = *result.config;
    EXPECT_EQ(config.source_path, kFile);
    EXPECT_EQ(config.agent.listen_addresses,
              (std::vector<std::string>{"127.0.0.1:9725", "[::1]:9725", ":9999"}));
    EXPECT_EQ(config.agent.max_concurrent_probes, 64u);
    EXPECT_EQ(config.agent.metrics, (MetricsConfig{{0.1, 1.0, 2.5}, false}));

    const TargetConfig mx1{.name = "mx1",
                           .host = "mx1.example.net",
                           .port = 25,
                           .tls = TlsMode::none,
                           .helo = "probe.example.net",
                           .interval = 1min,
                           .timeout = 20s,
                           .probes = {"connect"},
                           .tls_options = {},
                           .auth = std::nullopt,
                           .allow_plaintext_auth = false,
                           .expect = Expectation::success,
                           .message = std::nullopt,
                           .max_connections_per_minute = std::nullopt,
                           .throttle_backoff = 30s,
                           .probe_options = {}};
    const TargetConfig submissions{.name = "submissions",
                                   .host = "2001:db8::1",
                                   .port = 465,
                                   .tls = TlsMode::implicit,
                                   .helo = "other.example",
                                   .interval = 15s,
                                   .timeout = 5s,
                                   .probes = {"connect"},
                                   .tls_options = {.ca_file = "",
                                                   .server_name = "mail.example.net",
                                                   .insecure_skip_verify = true,
                                                   .min_version = TlsVersion::v1_3},
                                   .auth = std::nullopt,
                                   .allow_plaintext_auth = false,
                                   .expect = Expectation::success,
                                   .message = std::nullopt,
                                   .max_connections_per_minute = std::nullopt,
                                   .throttle_backoff = 30s,
                                   .probe_options = {}};
    const TargetConfig custom_port{.name = "custom-port",
                                   .host = "192.0.2.7",
                                   .port = 2525,
                                   .tls = TlsMode::starttls,
                                   .helo = "probe.example.net",
                                   .interval = 1h,
                                   .timeout = 20s,
                                   .probes = {"connect"},
                                   .tls_options = {},
                                   .auth = std::nullopt,
                                   .allow_plaintext_auth = false,
                                   .expect = Expectation::success,
                                   .message = std::nullopt,
                                   .max_connections_per_minute = std::nullopt,
                                   .throttle_backoff = 30s,
                                   .probe_options = {}};
    EXPECT_EQ(config.targets, (std::vector<TargetConfig>{mx1, submissions, custom_port}));
}

TEST(ConfigLoad, EmptyFileGivesDefaultsAndNoTargets) {
    const ConfigResult result = load("");
    ASSERT_TRUE(result.config.has_value());
    EXPECT_EQ(result.config->agent.listen_addresses, std::vector<std::string>{":9725"});
    EXPECT_EQ(result.config->agent.max_concurrent_probes, std::nullopt)
        << "unset: derived from the descriptor limit";
    EXPECT_EQ(result.config->agent.metrics.duration_buckets,
              (std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}));
    EXPECT_TRUE(result.config->agent.metrics.phase_histograms);
    EXPECT_TRUE(result.config->targets.empty());
}

TEST(ConfigLoad, MinimalTargetGetsBuiltInDefaults) {
    const ConfigResult result = load(kTarget);
    ASSERT_TRUE(result.config.has_value());
    const TargetConfig expected{.name = "mx1",
                                .host = "mx1.example.net",
                                .port = 25,
                                .tls = TlsMode::starttls,
                                .helo = machine_host_name(),
                                .interval = 30s,
                                .timeout = 10s,
                                .probes = {"connect"},
                                .tls_options = {},
                                .auth = std::nullopt,
                                .allow_plaintext_auth = false,
                                .expect = Expectation::success,
                                .message = std::nullopt,
                                .max_connections_per_minute = std::nullopt,
                                .throttle_backoff = 30s,
                                .probe_options = {}};
    EXPECT_EQ(result.config->targets, std::vector<TargetConfig>{expected});
}

TEST(ConfigLoad, ThrottlingAndBudgetsAreReadWithTheirDefaults) {
    const ConfigResult result = load(
        "[[targets]]\nname = \"a\"\nhost = \"mx\"\nmax_connections_per_minute = 6\n"
        "throttle_backoff = \"2m\"\n[targets.message]\nfrom = \"c@example.org\"\n"
        "to = [\"p@example.org\"]\nmax_messages_per_hour = 20\n"
        "[[targets]]\nname = \"b\"\nhost = \"mx\"\n");
    ASSERT_TRUE(result.config.has_value());
    const auto& targets = result.config->targets;
    EXPECT_EQ(targets[0].max_connections_per_minute, 6u);
    EXPECT_EQ(targets[0].throttle_backoff, 2min);
    EXPECT_EQ(targets[0].message->max_messages_per_hour, 20u);
    EXPECT_EQ(targets[1].max_connections_per_minute, std::nullopt);
    EXPECT_EQ(targets[1].throttle_backoff, 30s);
}

TEST(ConfigLoad, ImplicitTlsDefaultsToPort465) {
    const ConfigResult from_target = load(target_with("tls = \"implicit\"\n"));
    ASSERT_TRUE(from_target.config.has_value());
    EXPECT_EQ(from_target.config->targets.at(0).port, 465);

    const ConfigResult from_defaults =
        load("[defaults]\ntls = \"implicit\"\n" + std::string(kTarget));
    ASSERT_TRUE(from_defaults.config.has_value());
    EXPECT_EQ(from_defaults.config->targets.at(0).tls, TlsMode::implicit);
    EXPECT_EQ(from_defaults.config->targets.at(0).port, 465);

    const ConfigResult explicit_port = load(target_with("tls = \"implicit\"\nport = 10465\n"));
    ASSERT_TRUE(explicit_port.config.has_value());
    EXPECT_EQ(explicit_port.config->targets.at(0).port, 10465);
}

TEST(ConfigLoad, EmptyHeloMeansInherited) {
    const ConfigResult result =
        load("[defaults]\nhelo = \"\"\n" + target_with("helo = \"\"\n") +
             "[[targets]]\nname = \"b\"\nhost = \"b\"\nhelo = \"b.example\"\n");
    ASSERT_TRUE(result.config.has_value());
    EXPECT_EQ(result.config->targets.at(0).helo, machine_host_name());
    EXPECT_EQ(result.config->targets.at(1).helo, "b.example");
}

TEST(ConfigLoad, IntegerBucketsAreAccepted) {
    const ConfigResult result = load("[metrics]\nduration_buckets = [1, 2, 5.5, 10]\n");
    ASSERT_TRUE(result.config.has_value());
    EXPECT_EQ(result.config->agent.metrics.duration_buckets, (std::vector<double>{1, 2, 5.5, 10}));
}

TEST(ConfigLoad, InlineTableTargetsAreAccepted) {
    const ConfigResult result = load("targets = [{ name = \"a\", host = \"a.example\" }]\n");
    ASSERT_TRUE(result.config.has_value());
    EXPECT_EQ(result.config->targets.at(0).host, "a.example");
}

// One mistake per case: exactly one error, located exactly.
struct ErrorCase {
    std::string name;
    std::string toml;
    ExpectedError expected;
};

std::vector<ErrorCase> error_cases() {
    return {
        {"SyntaxError", "[agent]\nmax_concurrent_probes = \n", {2, 25, "", "expected value"}},
        {"RedefinedKey",
         "[agent]\n[agent]\n",
         {2, 1, "", "cannot redefine existing table 'agent'"}},
        {"UnknownRootKey", "target = 1\n", {1, 1, "target", "did you mean \"targets\"?"}},
        {"UnknownAgentKey",
         "[agent]\nfoo = 1\n",
         {2, 1, "agent.foo", "expected one of: listen_addresses, max_concurrent_probes"}},
        {"UnknownMetricsKey",
         "[metrics]\nphase_histogram = true\n",
         {2, 1, "metrics.phase_histogram", "did you mean \"phase_histograms\"?"}},
        {"UnknownDefaultsKey",
         "[defaults]\nport = 25\n",
         {2, 1, "defaults.port", "unknown key; expected one of: interval, timeout"}},
        {"UnknownTargetKey",
         target_with("tiemout = \"5s\"\n"),
         {4, 1, "targets[1].tiemout", "did you mean \"timeout\"?"}},
        {"UnknownTlsOptionsKey",
         target_with("[targets.tls_options]\ncafile = \"ca.pem\"\n"),
         {5, 1, "targets[1].tls_options.cafile", "did you mean \"ca_file\"?"}},
        {"SectionNotATable", "agent = 1\n", {1, 9, "agent", "expected a table, got an integer"}},
        {"ListenAddressWithoutPort",
         "[agent]\nlisten_addresses = [\"localhost\"]\n",
         {2, 21, "agent.listen_addresses[1]", "expected \"host:port\""}},
        {"ListenAddressPortOutOfRange",
         "[agent]\nlisten_addresses = [\":9725\", \"[::1]:65536\"]\n",
         {2, 30, "agent.listen_addresses[2]", "port 1..65535"}},
        {"DnsServerName",
         "[agent]\ndns_servers = [\"192.0.2.53\", \"ns1.example.net\"]\n",
         {2, 30, "agent.dns_servers[2]", "\"ns1.example.net\" is not an IP address"}},
        {"DnsServerPortOutOfRange",
         "[agent]\ndns_servers = [\"127.0.0.1:65536\"]\n",
         {2, 16, "agent.dns_servers[1]", "port \"65536\" is not a number from 1 to 65535"}},
        {"DnsServerEmptyPort",  // "::1:5353" is an IPv6 address itself
         "[agent]\ndns_servers = [\"::1:5353\", \"[::1]:\"]\n",
         {2, 28, "agent.dns_servers[2]", "empty port"}},
        {"DnsServersNotStrings",
         "[agent]\ndns_servers = [53]\n",
         {2, 16, "agent.dns_servers[1]", "expected a string"}},
        {"ListenAddressIpv6WithoutBrackets",
         "[agent]\nlisten_addresses = [\"::1:9725\"]\n",
         {2, 21, "agent.listen_addresses[1]", "must be in brackets"}},
        {"ListenAddressesEmpty",
         "[agent]\nlisten_addresses = []\n",
         {2, 20, "agent.listen_addresses", "must not be empty"}},
        {"ListenAddressesNotArray",
         "[agent]\nlisten_addresses = \":9725\"\n",
         {2, 20, "agent.listen_addresses", "expected an array of addresses, got a string"}},
        {"MaxConcurrentProbesZero",
         "[agent]\nmax_concurrent_probes = 0\n",
         {2, 25, "agent.max_concurrent_probes", "must be between 1 and 100000, got 0"}},
        {"MaxConcurrentProbesString",
         "[agent]\nmax_concurrent_probes = \"5\"\n",
         {2, 25, "agent.max_concurrent_probes", "expected an integer, got a string"}},
        {"BucketsEmpty",
         "[metrics]\nduration_buckets = []\n",
         {2, 20, "metrics.duration_buckets", "must have 1 to 50 entries, got 0"}},
        {"BucketsTooMany",
         "[metrics]\nduration_buckets = [" +
             [] {
                 std::string bounds;
                 for (int i = 1; i <= 51; ++i) bounds += std::to_string(i) + ",";
                 return bounds;
             }() +
             "]\n",
         {2, 20, "metrics.duration_buckets", "got 51"}},
        {"BucketsNotIncreasing",
         "[metrics]\nduration_buckets = [1, 1]\n",
         {2, 24, "metrics.duration_buckets[2]", "greater than the bucket before it (1)"}},
        {"BucketZero",
         "[metrics]\nduration_buckets = [0]\n",
         {2, 21, "metrics.duration_buckets[1]", "greater than 0"}},
        {"BucketInfinite",
         "[metrics]\nduration_buckets = [1, inf]\n",
         {2, 24, "metrics.duration_buckets[2]", "finite"}},
        {"BucketString",
         "[metrics]\nduration_buckets = [\"1\"]\n",
         {2, 21, "metrics.duration_buckets[1]", "expected a number of seconds, got a string"}},
        {"BucketsNotArray",
         "[metrics]\nduration_buckets = 1\n",
         {2, 20, "metrics.duration_buckets", "expected an array of numbers, got an integer"}},
        {"PhaseHistogramsString",
         "[metrics]\nphase_histograms = \"yes\"\n",
         {2, 20, "metrics.phase_histograms", "expected a boolean, got a string"}},
        {"DefaultsIntervalUnparsable",
         "[defaults]\ninterval = \"30\"\n",
         {2, 12, "defaults.interval", "invalid duration \"30\""}},
        {"DefaultsTimeoutZero",
         "[defaults]\ntimeout = \"0s\"\n",
         {2, 11, "defaults.timeout", "must be greater than 0"}},
        {"DefaultsTimeoutNotShorter",
         "[defaults]\ninterval = \"10s\"\ntimeout = \"10s\"\n",
         {3, 11, "defaults.timeout", "timeout 10s must be shorter than interval 10s"}},
        {"DefaultsIntervalBelowBuiltInTimeout",
         "[defaults]\ninterval = \"5s\"\n",
         {2, 12, "defaults.interval",
          "timeout 10s (the built-in default) must be shorter than interval 5s"}},
        {"DefaultsTlsUnknown",
         "[defaults]\ntls = \"startls\"\n",
         {2, 7, "defaults.tls",
          "unknown TLS mode \"startls\"; expected \"none\", \"starttls\" or \"implicit\""}},
        {"DefaultsProbesEmpty",
         "[defaults]\nprobes = []\n",
         {2, 10, "defaults.probes", "must not be empty"}},
        {"DefaultsHeloWithSpace",
         "[defaults]\nhelo = \"a b\"\n",
         {2, 8, "defaults.helo", "must not contain spaces"}},
        {"TargetMissingName",
         "[[targets]]\nhost = \"a\"\n",
         {1, 1, "targets[1].name", "required key is missing"}},
        {"TargetMissingHostInInlineTable",
         "targets = [{ name = \"a\" }]\n",
         {1, 12, "targets[1].host", "required key is missing"}},
        {"TargetEmptyName",
         "[[targets]]\nname = \"\"\nhost = \"a\"\n",
         {2, 8, "targets[1].name", "must not be empty"}},
        {"TargetNameNotString",
         "[[targets]]\nname = 1\nhost = \"a\"\n",
         {2, 8, "targets[1].name", "expected a string, got an integer"}},
        {"TargetEmptyHost",
         "[[targets]]\nname = \"a\"\nhost = \"\"\n",
         {3, 8, "targets[1].host", "must not be empty"}},
        {"TargetHostInBrackets",
         "[[targets]]\nname = \"a\"\nhost = \"[::1]\"\n",
         {3, 8, "targets[1].host", "without brackets"}},
        {"PortAsString",
         target_with("port = \"25\"\n"),
         {4, 8, "targets[1].port", "expected an integer, got a string"}},
        {"PortAboveRange",
         target_with("port = 65536\n"),
         {4, 8, "targets[1].port", "must be between 1 and 65535, got 65536"}},
        {"PortZero", target_with("port = 0\n"), {4, 8, "targets[1].port", "got 0"}},
        {"ThrottleBackoffPastTheLongestStep",
         target_with("throttle_backoff = \"1h\"\n"),
         {4, 20, "targets[1].throttle_backoff", "must be between 1s and"}},
        {"ConnectionBudgetZero",
         target_with("max_connections_per_minute = 0\n"),
         {4, 30, "targets[1].max_connections_per_minute", "must be between 1 and 10000, got 0"}},
        {"IpUnknown",
         target_with("ip = \"ipv6\"\n"),
         {4, 6, "targets[1].ip",
          "unknown IP family choice \"ipv6\"; expected \"auto\", \"v4\", \"v6\" or \"both\""}},
        {"IpNotString",
         target_with("ip = 6\n"),
         {4, 6, "targets[1].ip", "expected a string, got an integer"}},
        {"TargetTlsUnknown",
         target_with("tls = \"ssl\"\n"),
         {4, 7, "targets[1].tls", "unknown TLS mode \"ssl\""}},
        {"IntervalDecimal",
         target_with("interval = \"1.5s\"\n"),
         {4, 12, "targets[1].interval", "invalid duration \"1.5s\""}},
        {"IntervalNotString",
         target_with("interval = 30\n"),
         {4, 12, "targets[1].interval", "expected a string, got an integer"}},
        {"TimeoutEqualsInterval",
         target_with("interval = \"5s\"\ntimeout = \"5s\"\n"),
         {5, 11, "targets[1].timeout", "timeout 5s must be shorter than interval 5s"}},
        {"TimeoutNotShorterThanInheritedInterval",
         "[defaults]\ninterval = \"1m\"\n" + target_with("timeout = \"2m\"\n"),
         {6, 11, "targets[1].timeout",
          "timeout 2m must be shorter than interval 1m (from [defaults])"}},
        {"IntervalNotLongerThanInheritedTimeout",
         target_with("interval = \"10s\"\n"),
         {4, 12, "targets[1].interval",
          "timeout 10s (from [defaults]) must be shorter than interval 10s"}},
        {"ProbesAsString",
         target_with("probes = \"connect\"\n"),
         {4, 10, "targets[1].probes", "expected an array of probe names, got a string"}},
        {"ProbeUnknown",
         target_with("probes = [\"conect\"]\n"),
         {4, 11, "targets[1].probes[1]", "unknown probe \"conect\"; did you mean \"connect\"?"}},
        {"ProbeDuplicate",
         target_with("probes = [\"connect\", \"connect\"]\n"),
         {4, 22, "targets[1].probes[2]", "duplicate entry \"connect\""}},
        {"TargetHeloWithLineBreak",
         target_with("helo = \"a\\r\\nMAIL FROM:<x>\"\n"),
         {4, 8, "targets[1].helo", "control characters"}},
        {"CaFileMissing",
         target_with("[targets.tls_options]\nca_file = \"/nonexistent/ca.pem\"\n"),
         {5, 11, "targets[1].tls_options.ca_file",
          "CA file \"/nonexistent/ca.pem\" does not exist"}},
        {"CaFileIsDirectory",
         target_with("[targets.tls_options]\nca_file = \"/\"\n"),
         {5, 11, "targets[1].tls_options.ca_file", "is not a regular file"}},
        {"ServerNameEmpty",
         target_with("[targets.tls_options]\nserver_name = \"\"\n"),
         {5, 15, "targets[1].tls_options.server_name", "must not be empty"}},
        {"InsecureSkipVerifyString",
         target_with("[targets.tls_options]\ninsecure_skip_verify = \"yes\"\n"),
         {5, 24, "targets[1].tls_options.insecure_skip_verify",
          "expected a boolean, got a string"}},
        {"MinVersionUnknown",
         target_with("[targets.tls_options]\nmin_version = \"1.4\"\n"),
         {5, 15, "targets[1].tls_options.min_version",
          "unknown TLS version \"1.4\"; expected \"1.0\", \"1.1\", \"1.2\" or \"1.3\""}},
        {"MinVersionFloat",
         target_with("[targets.tls_options]\nmin_version = 1.2\n"),
         {5, 15, "targets[1].tls_options.min_version",
          "expected a string, got a floating-point number"}},
        {"TlsOptionsNotTable",
         target_with("tls_options = \"x\"\n"),
         {4, 15, "targets[1].tls_options", "expected a table, got a string"}},
        {"TargetsString",
         "targets = \"mx1\"\n",
         {1, 11, "targets", "expected an array of tables ([[targets]]), got a string"}},
        {"TargetsTable",
         "[targets]\nname = \"a\"\n",
         {1, 1, "targets", "expected an array of tables ([[targets]]), got a table"}},
        {"TargetNotTable",
         "targets = [1]\n",
         {1, 12, "targets[1]", "expected a table, got an integer"}},
        {"DuplicateTargetName",
         target_with("[[targets]]\nname = \"mx1\"\nhost = \"b\"\n"),
         {5, 8, "targets[2].name", "duplicate target name \"mx1\" (first defined at line 2)"}},
        {"AuthNotTable",
         target_with("probes = [\"auth\"]\nauth = \"probe@example.test\"\n"),
         {5, 8, "targets[1].auth", "expected a table, got a string"}},
        {"UnknownAuthKey",
         auth_target_with("username = \"u\"\ntoken_file = \"/t\"\npasword_env = \"X\"\n"),
         {8, 1, "targets[1].auth.pasword_env", "did you mean \"password_env\"?"}},
        {"AuthUsernameMissing",
         auth_target_with("token_file = \"/t\"\n"),
         {5, 1, "targets[1].auth.username", "required key is missing"}},
        {"AuthUsernameEmpty",
         auth_target_with("username = \"\"\ntoken_file = \"/t\"\n"),
         {6, 12, "targets[1].auth.username", "must not be empty"}},
        {"AuthUsernameWithLineBreak",
         auth_target_with("username = \"u\\r\\nAUTH\"\ntoken_file = \"/t\"\n"),
         {6, 12, "targets[1].auth.username", "must not contain control characters"}},
        {"AuthUsernameNotString",
         auth_target_with("username = 1\ntoken_file = \"/t\"\n"),
         {6, 12, "targets[1].auth.username", "expected a string, got an integer"}},
        {"AuthMechanismUnknown",
         auth_target_with("username = \"u\"\ntoken_file = \"/t\"\nmechanism = \"CRAM-MD5\"\n"),
         {8, 13, "targets[1].auth.mechanism",
          "unknown SASL mechanism \"CRAM-MD5\"; expected \"auto\", \"plain\", \"login\", "
          "\"cram-md5\", \"xoauth2\" or \"oauthbearer\""}},
        {"AuthMechanismNeedsPassword",
         auth_target_with("username = \"u\"\nmechanism = \"cram-md5\"\ntoken_file = \"/t\"\n"),
         {7, 13, "targets[1].auth.mechanism",
          "mechanism \"cram-md5\" needs password_env or password_file, not token_file"}},
        {"AuthWithoutCredential",
         auth_target_with("username = \"u\"\n"),
         {5, 1, "targets[1].auth", kNeedsOneCredential}},
        {"AuthInlineWithoutCredential",
         target_with("probes = [\"auth\"]\nauth = { username = \"u\" }\n"),
         {5, 8, "targets[1].auth", kNeedsOneCredential}},
        {"TokenFileEmpty",
         auth_target_with("username = \"u\"\ntoken_file = \"\"\n"),
         {7, 14, "targets[1].auth.token_file", "must not be empty"}},
        {"TokenFileNotString",
         auth_target_with("username = \"u\"\ntoken_file = [\"/t\"]\n"),
         {7, 14, "targets[1].auth.token_file", "expected a string, got an array"}},
        {"PasswordEnvEmptyName",
         auth_target_with("username = \"u\"\npassword_env = \"\"\n"),
         {7, 16, "targets[1].auth.password_env", "must not be empty"}},
        {"PasswordEnvWithEquals",
         auth_target_with("username = \"u\"\npassword_env = \"A=B\"\n"),
         {7, 16, "targets[1].auth.password_env", "must be an environment variable name"}},
        {"PasswordFileMissing",
         auth_target_with("username = \"u\"\npassword_file = \"/nonexistent/mx1.pw\"\n"),
         {7, 17, "targets[1].auth.password_file",
          "password file \"/nonexistent/mx1.pw\" does not exist"}},
        {"PasswordFileIsDirectory",
         auth_target_with("username = \"u\"\npassword_file = \"/\"\n"),
         {7, 17, "targets[1].auth.password_file", "is not a regular file"}},
        {"AuthProbeWithoutAuthTable",
         target_with("probes = [\"connect\", \"auth\"]\n"),
         {4, 10, "targets[1].probes", "probe \"auth\" needs a [targets.auth] table"}},
        {"AuthProbeFromDefaultsWithoutAuthTable",
         "[defaults]\nprobes = [\"auth\"]\n" + std::string(kTarget),
         {3, 1, "targets[1].auth",
          "probe \"auth\" needs a [targets.auth] table (probes from [defaults])"}},
        {"InvalidProbesGiveNoAuthFollowUp",
         "[defaults]\nprobes = [\"auth\"]\n" + target_with("probes = [\"auth\", \"conect\"]\n"),
         {6, 19, "targets[1].probes[2]", "unknown probe \"conect\""}},
        {"ExpectUnknown",
         target_with("expect = \"failure\"\n"),
         {4, 10, "targets[1].expect",
          "unknown expectation \"failure\"; expected \"success\" or \"reject\""}},
        {"ExpectRejectWithoutAuthProbe",
         target_with("expect = \"reject\"\n"),
         {4, 10, "targets[1].expect", "\"reject\" needs the \"auth\" probe"}},
        {"AllowPlaintextAuthString",
         target_with("allow_plaintext_auth = \"false\"\n"),
         {4, 24, "targets[1].allow_plaintext_auth", "expected a boolean, got a string"}},
        {"SecretFileEmpty",
         "[agent]\nsecret_file = \"\"\n",
         {2, 15, "agent.secret_file", "must not be empty"}},
        {"SecretFileNotString",
         "[agent]\nsecret_file = true\n",
         {2, 15, "agent.secret_file", "expected a string, got a boolean"}},
        {"SecretFileIsDirectory",
         "[agent]\nsecret_file = \"/\"\n",
         {2, 15, "agent.secret_file", "secret file \"/\" is not a regular file"}},
        {"UnknownAgentKeyListsSecretFile",
         "[agent]\nsecret = \"x\"\n",
         {2, 1, "agent.secret",
          "expected one of: listen_addresses, max_concurrent_probes, "
          "secret_file"}},
        {"ShardCountZero",
         "[agent]\nshard_count = 0\n",
         {2, 15, "agent.shard_count", "must be between 1 and 10000, got 0"}},
        {"ShardIndexNegative",
         "[agent]\nshard_count = 3\nshard_index = -1\n",
         {3, 15, "agent.shard_index", "must be a number from 0 to 9999 or \"from-hostname\""}},
        {"ShardIndexUnknownWord",
         "[agent]\nshard_count = 3\nshard_index = \"hostname\"\n",
         {3, 15, "agent.shard_index", "must be a number from 0 to 9999 or \"from-hostname\""}},
        {"ShardIndexWrongType",
         "[agent]\nshard_index = 1.5\n",
         {2, 15, "agent.shard_index", "expected an integer or \"from-hostname\", got"}},
        {"ShardIndexNotBelowCount",
         "[agent]\nshard_count = 3\nshard_index = 3\n",
         {3, 15, "agent.shard_index", "shard index 3 must be less than shard_count 3"}},
        {"ShardIndexWithoutCount",
         "[agent]\nshard_index = 1\n",
         {2, 15, "agent.shard_index", "must be less than the default shard_count 1"}},
        {"MessageNotTable",
         target_with("probes = [\"accept\"]\nmessage = \"canary@example.org\"\n"),
         {5, 11, "targets[1].message", "expected a table, got a string"}},
        {"UnknownMessageKey",
         message_target_with("to = [\"p@example.test\"]\nsubjet = \"x\"\n"),
         {8, 1, "targets[1].message.subjet", "unknown key; did you mean \"subject\"?"}},
        {"MessageFromMissing",
         target_with("probes = [\"accept\"]\n[targets.message]\nto = [\"p@example.test\"]\n"),
         {5, 1, "targets[1].message.from", "required key is missing"}},
        {"MessageFromEmpty",
         target_with("probes = [\"accept\"]\n[targets.message]\nfrom = \"\"\n"
                     "to = [\"p@example.test\"]\n"),
         {6, 8, "targets[1].message.from", "must not be empty"}},
        {"MessageFromNotString",
         target_with("probes = [\"accept\"]\n[targets.message]\nfrom = [\"a@b\"]\n"
                     "to = [\"p@example.test\"]\n"),
         {6, 8, "targets[1].message.from", "expected a string, got an array"}},
        {"MessageFromWithoutAt",
         target_with("probes = [\"accept\"]\n[targets.message]\nfrom = \"canary\"\n"
                     "to = [\"p@example.test\"]\n"),
         {6, 8, "targets[1].message.from", "invalid address \"canary\": needs exactly one '@'"}},
        {"MessageFromInAngleBrackets",
         target_with("probes = [\"accept\"]\n[targets.message]\nfrom = \"<c@example.org>\"\n"
                     "to = [\"p@example.test\"]\n"),
         {6, 8, "targets[1].message.from",
          "invalid address \"<c@example.org>\": must not contain '<', '>', ',' or '\"'"}},
        {"MessageToMissing",
         message_target_with("subject = \"x\"\n"),
         {5, 1, "targets[1].message.to", "required key is missing"}},
        {"MessageToNotArray",
         message_target_with("to = \"p@example.test\"\n"),
         {7, 6, "targets[1].message.to", "expected an array of addresses, got a string"}},
        {"MessageToEmpty",
         message_target_with("to = []\n"),
         {7, 6, "targets[1].message.to", "must not be empty"}},
        {"MessageToElementNotString",
         message_target_with("to = [\"p@example.test\", 1]\n"),
         {7, 25, "targets[1].message.to[2]", "expected a string, got an integer"}},
        {"MessageToDuplicate",
         message_target_with("to = [\"p@example.test\", \"q@example.test\", \"p@example.test\"]\n"),
         {7, 43, "targets[1].message.to[3]", "duplicate entry \"p@example.test\""}},
        {"MessageToTwoAts",
         message_target_with("to = [\"p@example.test\", \"a@b@example.test\"]\n"),
         {7, 25, "targets[1].message.to[2]",
          "invalid address \"a@b@example.test\": needs exactly one '@'"}},
        {"MessageToEmptyLocalPart",
         message_target_with("to = [\"@example.test\"]\n"),
         {7, 7, "targets[1].message.to[1]",
          "invalid address \"@example.test\": nothing before the '@'"}},
        {"MessageToEmptyDomain",
         message_target_with("to = [\"probe@\"]\n"),
         {7, 7, "targets[1].message.to[1]", "invalid address \"probe@\": no domain after the '@'"}},
        {"MessageToEmptyAddress",
         message_target_with("to = [\"\"]\n"),
         {7, 7, "targets[1].message.to[1]", "invalid address \"\": must not be empty"}},
        {"MessageToWithSpace",
         message_target_with("to = [\"pro be@example.test\"]\n"),
         {7, 7, "targets[1].message.to[1]",
          "invalid address \"pro be@example.test\": must not contain spaces or control"}},
        {"MessageToWithLineBreakIsEscapedInTheMessage",
         message_target_with("to = [\"p@example.test\\r\\nRCPT TO:<x@y>\"]\n"),
         {7, 7, "targets[1].message.to[1]",
          "invalid address \"p@example.test\\r\\nRCPT TO:<x@y>\": must not contain spaces or "
          "control characters"}},
        {"MessageToWithComma",
         message_target_with("to = [\"a@example.test,b@example.test\"]\n"),
         {7, 7, "targets[1].message.to[1]", "must not contain '<', '>', ',' or '\"'"}},
        {"MessageToWithQuote",
         message_target_with("to = ['\"a\"@example.test']\n"),
         {7, 7, "targets[1].message.to[1]", "must not contain '<', '>', ',' or '\"'"}},
        {"MessageToTooLong",
         message_target_with("to = [\"" + std::string(243, 'a') + "@example.test\"]\n"),
         {7, 7, "targets[1].message.to[1]", ": longer than 254 characters"}},
        {"MessageSubjectWithLineBreak",
         message_target_with("to = [\"p@example.test\"]\nsubject = \"hi\\nBcc: x@y\"\n"),
         {8, 11, "targets[1].message.subject", "must not contain control characters"}},
        {"MessageSubjectTooLong",
         message_target_with("to = [\"p@example.test\"]\nsubject = \"" + std::string(201, 's') +
                             "\"\n"),
         {8, 11, "targets[1].message.subject", "must be at most 200 characters, got 201"}},
        {"MessageSubjectNotString",
         message_target_with("to = [\"p@example.test\"]\nsubject = 1\n"),
         {8, 11, "targets[1].message.subject", "expected a string, got an integer"}},
        {"MessageModeUnknown",
         message_target_with("to = [\"p@example.test\"]\nmode = \"RCPT\"\n"),
         {8, 8, "targets[1].message.mode",
          "unknown accept mode \"RCPT\"; expected \"data\" or \"rcpt\""}},
        {"MessageHeadersNotTable",
         message_target_with("to = [\"p@example.test\"]\nheaders = [\"X-Team: ops\"]\n"),
         {8, 11, "targets[1].message.headers", "expected a table, got an array"}},
        {"HeaderValueNotString",
         headers_target_with("X-Priority = 1\n"),
         {9, 14, "targets[1].message.headers.X-Priority", "expected a string, got an integer"}},
        {"HeaderValueWithLineBreak",
         headers_target_with("X-Team = \"ops\\r\\nBcc: x@y\"\n"),
         {9, 10, "targets[1].message.headers.X-Team", "must not contain control characters"}},
        {"HeaderValueTooLong",
         headers_target_with("X-Team = \"" + std::string(901, 'v') + "\"\n"),
         {9, 10, "targets[1].message.headers.X-Team", "must be at most 900 characters, got 901"}},
        {"HeaderNameWithSpace",
         headers_target_with("\"X Team\" = \"ops\"\n"),
         {9, 1, "targets[1].message.headers.X Team",
          "header name \"X Team\" must be printable ASCII without spaces or ':'"}},
        {"HeaderNameWithColon",
         headers_target_with("\"X-Team:\" = \"ops\"\n"),
         {9, 1, "targets[1].message.headers.X-Team:", "without spaces or ':'"}},
        {"HeaderNameNotAscii",
         headers_target_with("\"X-\u00c9quipe\" = \"ops\"\n"),
         {9, 1, "targets[1].message.headers.X-\u00c9quipe", "must be printable ASCII"}},
        {"HeaderNameEmpty",
         headers_target_with("\"\" = \"ops\"\n"),
         {9, 1, "targets[1].message.headers.", "header name \"\" must be printable ASCII"}},
        {"HeaderNameTooLong",
         headers_target_with("X-" + std::string(75, 'n') + " = \"ops\"\n"),
         {9, 1, "targets[1].message.headers.X-" + std::string(75, 'n'),
          "longer than 76 characters"}},
        {"HeaderSetByTheAgent",
         headers_target_with("From = \"someone@example.org\"\n"),
         {9, 1, "targets[1].message.headers.From", "header \"From\" is set by the agent"}},
        {"HeaderSetByTheAgentInOtherCase",
         headers_target_with("x-mailcanary-token = \"forged\"\n"),
         {9, 1, "targets[1].message.headers.x-mailcanary-token",
          "header \"x-mailcanary-token\" is set by the agent"}},
        {"AcceptProbeWithoutMessageTable",
         target_with("probes = [\"connect\", \"accept\"]\n"),
         {4, 10, "targets[1].probes", "probe \"accept\" needs a [targets.message] table"}},
        {"AcceptProbeFromDefaultsWithoutMessageTable",
         "[defaults]\nprobes = [\"accept\"]\n" + std::string(kTarget),
         {3, 1, "targets[1].message",
          "probe \"accept\" needs a [targets.message] table (probes from [defaults])"}},
        {"InvalidProbesGiveNoMessageFollowUp",
         target_with("probes = [\"accept\", \"acept\"]\n"),
         {4, 21, "targets[1].probes[2]", "unknown probe \"acept\"; did you mean \"accept\"?"}},
        {"InvalidMessageTableGivesNoFollowUp",
         target_with("probes = [\"accept\"]\nmessage = 1\n"),
         {5, 11, "targets[1].message", "expected a table, got an integer"}},
        {"RoundtripNotTable",
         target_with("roundtrip = \"imap.example.net\"\n"),
         {4, 13, "targets[1].roundtrip", "expected a table, got a string"}},
        {"RoundtripInDefaults",
         "[defaults]\nroundtrip = { mailbox = \"INBOX\" }\n",
         {2, 1, "defaults.roundtrip", "unknown key; expected one of: interval, timeout, helo"}},
        {"UnknownRoundtripKey",
         roundtrip_target_with("mailbx = \"INBOX\"\n"),
         {7, 1, "targets[1].roundtrip.mailbx", "unknown key; did you mean \"mailbox\"?"}},
        {"UnknownRoundtripCredentialKey",
         roundtrip_target_with("pasword_file = \"/p\"\n"),
         {7, 1, "targets[1].roundtrip.pasword_file", "did you mean \"password_file\"?"}},
        {"UnknownRoundtripTlsOptionsKey",
         roundtrip_target_with("[targets.roundtrip.tls_options]\nservername = \"x\"\n"),
         {8, 1, "targets[1].roundtrip.tls_options.servername",
          "unknown key; did you mean \"server_name\"?"}},
        {"RoundtripTlsOptionsNotTable",
         roundtrip_target_with("tls_options = 1\n"),
         {7, 15, "targets[1].roundtrip.tls_options", "expected a table, got an integer"}},
        {"RoundtripCaFileMissing",
         roundtrip_target_with(
             "[targets.roundtrip.tls_options]\nca_file = \"/nonexistent/ca.pem\"\n"),
         {8, 11, "targets[1].roundtrip.tls_options.ca_file",
          "CA file \"/nonexistent/ca.pem\" does not exist"}},
        {"RoundtripServerNameWithScope",
         roundtrip_target_with("[targets.roundtrip.tls_options]\nserver_name = \"fe80::1%eth0\"\n"),
         {8, 15, "targets[1].roundtrip.tls_options.server_name", "a scoped IPv6 address"}},
        {"RoundtripMinVersionUnknown",
         roundtrip_target_with("[targets.roundtrip.tls_options]\nmin_version = \"1.4\"\n"),
         {8, 15, "targets[1].roundtrip.tls_options.min_version", "unknown TLS version \"1.4\""}},
        {"ImapHostEmpty",
         roundtrip_target_with("imap_host = \"\"\n"),
         {7, 13, "targets[1].roundtrip.imap_host", "must not be empty"}},
        {"ImapHostInBrackets",
         roundtrip_target_with("imap_host = \"[2001:db8::1]\"\n"),
         {7, 13, "targets[1].roundtrip.imap_host", "write an IPv6 address without brackets"}},
        {"ImapHostWithLineBreak",
         roundtrip_target_with("imap_host = \"imap\\r\\n\"\n"),
         {7, 13, "targets[1].roundtrip.imap_host",
          "must not contain spaces or control characters"}},
        {"ImapHostNotString",
         roundtrip_target_with("imap_host = 1\n"),
         {7, 13, "targets[1].roundtrip.imap_host", "expected a string, got an integer"}},
        {"ImapPortAboveRange",
         roundtrip_target_with("imap_port = 65536\n"),
         {7, 13, "targets[1].roundtrip.imap_port", "must be between 1 and 65535, got 65536"}},
        {"ImapPortAsString",
         roundtrip_target_with("imap_port = \"993\"\n"),
         {7, 13, "targets[1].roundtrip.imap_port", "expected an integer, got a string"}},
        {"ImapTlsUnknown",
         roundtrip_target_with("imap_tls = \"ssl\"\n"),
         {7, 12, "targets[1].roundtrip.imap_tls",
          "unknown TLS mode \"ssl\"; expected \"none\", \"starttls\" or \"implicit\""}},
        {"MailboxEmpty",
         roundtrip_target_with("mailbox = \"\"\n"),
         {7, 11, "targets[1].roundtrip.mailbox", "must not be empty"}},
        {"MailboxWithLineBreak",
         roundtrip_target_with("mailbox = \"INBOX\\r\\nA2 DELETE INBOX\"\n"),
         {7, 11, "targets[1].roundtrip.mailbox", "must not contain CR, LF or NUL"}},
        {"MailboxWithNul",
         roundtrip_target_with("mailbox = \"INBOX\\u0000x\"\n"),
         {7, 11, "targets[1].roundtrip.mailbox", "must not contain CR, LF or NUL"}},
        {"MailboxNotString",
         roundtrip_target_with("mailbox = [\"INBOX\"]\n"),
         {7, 11, "targets[1].roundtrip.mailbox", "expected a string, got an array"}},
        {"JunkFoldersNotArray",
         roundtrip_target_with("junk_folders = \"Junk\"\n"),
         {7, 16, "targets[1].roundtrip.junk_folders",
          "expected an array of folder names, got a string"}},
        {"JunkFolderEmpty",
         roundtrip_target_with("junk_folders = [\"Junk\", \"\"]\n"),
         {7, 25, "targets[1].roundtrip.junk_folders[2]", "must not be empty"}},
        {"JunkFolderWithLineBreak",
         roundtrip_target_with("junk_folders = [\"Sp\\nam\"]\n"),
         {7, 17, "targets[1].roundtrip.junk_folders[1]", "must not contain CR, LF or NUL"}},
        {"JunkFolderDuplicate",
         roundtrip_target_with("junk_folders = [\"Junk\", \"Junk\"]\n"),
         {7, 25, "targets[1].roundtrip.junk_folders[2]", "duplicate entry \"Junk\""}},
        {"JunkFolderNotString",
         roundtrip_target_with("junk_folders = [1]\n"),
         {7, 17, "targets[1].roundtrip.junk_folders[1]", "expected a string, got an integer"}},
        {"RoundtripTimeoutUnparsable",
         roundtrip_target_with("timeout = \"2 m\"\n"),
         {7, 11, "targets[1].roundtrip.timeout", "invalid duration \"2 m\""}},
        {"RoundtripTimeoutZero",
         roundtrip_target_with("timeout = \"0s\"\n"),
         {7, 11, "targets[1].roundtrip.timeout", "must be greater than 0"}},
        {"RoundtripTimeoutAboveOneDay",
         roundtrip_target_with("timeout = \"25h\"\n"),
         {7, 11, "targets[1].roundtrip.timeout", "must be at most 1d, got 25h"}},
        {"RoundtripTimeoutNotString",
         roundtrip_target_with("timeout = 120\n"),
         {7, 11, "targets[1].roundtrip.timeout", "expected a string, got an integer"}},
        {"CleanupUnknown",
         roundtrip_target_with("cleanup = \"delete_message\"\n"),
         {7, 11, "targets[1].roundtrip.cleanup",
          "unknown cleanup mode \"delete_message\"; expected \"delete\", \"trash\" or "
          "\"keep\""}},
        {"DeleteMethodUnknown",
         roundtrip_target_with("delete_method = \"gmail\"\n"),
         {7, 17, "targets[1].roundtrip.delete_method",
          "unknown delete method \"gmail\"; expected \"auto\", \"expunge\" or \"via_trash\""}},
        {"DeleteMethodWithoutDelete",
         roundtrip_target_with("cleanup = \"trash\"\ndelete_method = \"via_trash\"\n"),
         {8, 17, "targets[1].roundtrip.delete_method",
          "says how cleanup = \"delete\" deletes: set it only with that cleanup mode"}},
        {"IdleString",
         roundtrip_target_with("idle = \"yes\"\n"),
         {7, 8, "targets[1].roundtrip.idle", "expected a boolean, got a string"}},
        {"PromptChecksString",
         roundtrip_target_with("prompt_checks = \"no\"\n"),
         {7, 17, "targets[1].roundtrip.prompt_checks", "expected a boolean, got a string"}},
        {"PollIntervalTooShort",
         roundtrip_target_with("poll_interval = \"5ms\"\n"),
         {7, 17, "targets[1].roundtrip.poll_interval", "must be between 10ms and 1h, got 5ms"}},
        {"PollIntervalTooLong",
         roundtrip_target_with("timeout = \"1d\"\npoll_interval = \"1h1s\"\n"),
         {8, 17, "targets[1].roundtrip.poll_interval", "must be between 10ms and 1h, got 1h1s"}},
        {"PollIntervalZero",
         roundtrip_target_with("poll_interval = \"0ms\"\n"),
         {7, 17, "targets[1].roundtrip.poll_interval", "must be greater than 0"}},
        {"PollIntervalUnparsable",
         roundtrip_target_with("poll_interval = \"0.5s\"\n"),
         {7, 17, "targets[1].roundtrip.poll_interval", "invalid duration \"0.5s\""}},
        {"PollIntervalNotShorterThanTimeout",
         roundtrip_target_with("timeout = \"30s\"\npoll_interval = \"30s\"\n"),
         {8, 17, "targets[1].roundtrip.poll_interval",
          "poll_interval 30s must be shorter than timeout 30s"}},
        {"PollIntervalNotShorterThanDefaultTimeout",
         roundtrip_target_with("poll_interval = \"1h\"\n"),
         {7, 17, "targets[1].roundtrip.poll_interval",
          "poll_interval 1h must be shorter than timeout 2m (the default)"}},
        {"TimeoutNotLongerThanDefaultPollInterval",
         roundtrip_target_with("timeout = \"1s\"\n"),
         {7, 11, "targets[1].roundtrip.timeout",
          "poll_interval 1s (the default) must be shorter than timeout 1s"}},
        {"AuthservIdEmpty",
         roundtrip_target_with("authserv_id = \"\"\n"),
         {7, 15, "targets[1].roundtrip.authserv_id", "must not be empty"}},
        {"AuthservIdWithSpace",
         roundtrip_target_with("authserv_id = \"mx.example.net; spf=pass\"\n"),
         {7, 15, "targets[1].roundtrip.authserv_id",
          "must not contain spaces or control characters"}},
        {"AuthservIdStarNotInFront",
         roundtrip_target_with("authserv_id = \"mx.*.example.net\"\n"),
         {7, 15, "targets[1].roundtrip.authserv_id",
          "may hold a \"*\" only as a leading \"*.\" before a domain (\"*.mail.yahoo.com\")"}},
        {"AuthservIdStarAlone",
         roundtrip_target_with("authserv_id = \"*.\"\n"),
         {7, 15, "targets[1].roundtrip.authserv_id",
          "may hold a \"*\" only as a leading \"*.\" before a domain (\"*.mail.yahoo.com\")"}},
        {"AuthservIdNotString",
         roundtrip_target_with("authserv_id = true\n"),
         {7, 15, "targets[1].roundtrip.authserv_id", "expected a string, got a boolean"}},
        {"BounceMailboxWithLineBreak",
         roundtrip_target_with("bounce_mailbox = \"Bounces\\r\\nX\"\n"),
         {7, 18, "targets[1].roundtrip.bounce_mailbox", "must not contain CR, LF or NUL"}},
        {"RoundtripUsernameMissing",
         roundtrip_credentials_with("token_file = \"/t\"\n"),
         {4, 1, "targets[1].roundtrip.username", "required key is missing"}},
        {"RoundtripUsernameWithLineBreak",
         roundtrip_credentials_with("username = \"u\\r\\nA1 LOGOUT\"\ntoken_file = \"/t\"\n"),
         {5, 12, "targets[1].roundtrip.username", "must not contain control characters"}},
        {"RoundtripWithoutCredential",
         roundtrip_credentials_with("username = \"u\"\n"),
         {4, 1, "targets[1].roundtrip", kNeedsOneCredential}},
        {"RoundtripInlineWithoutCredential",
         target_with("roundtrip = { username = \"u\", mailbox = \"INBOX\" }\n"),
         {4, 13, "targets[1].roundtrip", kNeedsOneCredential}},
        {"RoundtripCramMd5",
         roundtrip_target_with("mechanism = \"cram-md5\"\n"),
         {7, 13, "targets[1].roundtrip.mechanism",
          "SASL mechanism \"cram-md5\" is not supported for IMAP; expected \"auto\", \"plain\", "
          "\"login\", \"xoauth2\" or \"oauthbearer\""}},
        {"RoundtripMechanismUnknown",
         roundtrip_target_with("mechanism = \"digest-md5\"\n"),
         {7, 13, "targets[1].roundtrip.mechanism",
          "unknown SASL mechanism \"digest-md5\"; expected \"auto\", \"plain\", \"login\", "
          "\"xoauth2\" or \"oauthbearer\""}},
        {"RoundtripMechanismNeedsPassword",
         roundtrip_target_with("mechanism = \"plain\"\n"),
         {7, 13, "targets[1].roundtrip.mechanism",
          "mechanism \"plain\" needs password_env or password_file, not token_file"}},
        {"RoundtripPasswordFileMissing",
         roundtrip_credentials_with("username = \"u\"\npassword_file = \"/nonexistent/imap.pw\"\n"),
         {6, 17, "targets[1].roundtrip.password_file",
          "password file \"/nonexistent/imap.pw\" does not exist"}},
        {"RoundtripPasswordEnvWithEquals",
         roundtrip_credentials_with("username = \"u\"\npassword_env = \"A=B\"\n"),
         {6, 16, "targets[1].roundtrip.password_env", "must be an environment variable name"}},
    };
}

// Names the case in failure output instead of dumping its bytes.
void PrintTo(const ErrorCase& error_case, std::ostream* out) { *out << error_case.name; }

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsExactlyOneLocatedError) {
    expect_errors(load(GetParam().toml), {GetParam().expected});
}

INSTANTIATE_TEST_SUITE_P(EachMistake, ConfigErrorTest, testing::ValuesIn(error_cases()),
                         [](const testing::TestParamInfo<ErrorCase>& case_info) {
                             return case_info.param.name;
                         });

TEST(ConfigLoad, ReportsEveryMistakeInOneFile) {
    const ConfigResult result = load(R"([agent]
listen_addresses = ["localhost"]
max_concurent_probes = 3

[metrics]
duration_buckets = [0.5, 0.1]

[defaults]
tls = "startls"

[[targets]]
name = "mx1"
host = "mx1.example.net"
port = "25"
timeout = "1 s"
probes = ["conect"]

[[targets]]
name = "mx1"
host = ""
interval = "5s"
timeout = "5s"
)");
    expect_errors(
        result, {
                    {2, 21, "agent.listen_addresses[1]", "expected \"host:port\""},
                    {3, 1, "agent.max_concurent_probes", "did you mean \"max_concurrent_probes\"?"},
                    {6, 26, "metrics.duration_buckets[2]", "bucket before it (0.5)"},
                    {9, 7, "defaults.tls", "unknown TLS mode \"startls\""},
                    {14, 8, "targets[1].port", "expected an integer, got a string"},
                    {15, 11, "targets[1].timeout", "invalid duration \"1 s\""},
                    {16, 11, "targets[1].probes[1]", "unknown probe \"conect\""},
                    {19, 8, "targets[2].name", "first defined at line 12"},
                    {20, 8, "targets[2].host", "must not be empty"},
                    {22, 11, "targets[2].timeout", "timeout 5s must be shorter than interval 5s"},
                });
}

TEST(ConfigLoad, UnknownProbeMessageListsKnownProbes) {
    const ConfigResult result = load(target_with("probes = [\"smtp\"]\n"));
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_NE(result.errors[0].message.find("known probes: "), std::string::npos);
    EXPECT_NE(result.errors[0].message.find("connect"), std::string::npos);
}

TEST(ConfigLoad, RelativeCaFileIsResolvedAgainstTheConfigDirectory) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path ca_file = dir.write("certs/ca.pem", "not checked here");
    const fs::path config_file = dir.write(
        "config.toml", target_with("[targets.tls_options]\nca_file = \"certs/../certs/ca.pem\"\n"));

    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->targets.at(0).tls_options.ca_file, ca_file.string());
    EXPECT_EQ(result.config->source_path, config_file.string());
}

TEST(ConfigLoad, AbsoluteCaFileIsKept) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path ca_file = dir.write("ca.pem", "x");
    const ConfigResult result =
        load(target_with("[targets.tls_options]\nca_file = \"" + ca_file.string() + "\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->targets.at(0).tls_options.ca_file, ca_file.string());
}

TEST(ConfigLoad, UnreadableCaFileIsReported) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path ca_file = dir.write("ca.pem", "x");
    fs::permissions(ca_file, fs::perms::none);
    const fs::path config_file =
        dir.write("config.toml", target_with("[targets.tls_options]\nca_file = \"ca.pem\"\n"));
    const test::FilePermissionsEnforced as_any_user;  // CI runs as root
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].line, 5u);
    EXPECT_NE(result.errors[0].message.find("is not readable"), std::string::npos);
}

TEST(ConfigAuth, FullAuthConfigParsesToExpectedStructs) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("secrets/mx2.pw", std::string(kFilePassword) + "\n");
    const fs::path config_file = dir.write("config.toml", R"([defaults]
interval = "1m"
timeout = "20s"
helo = "probe.example.net"

[[targets]]
name = "mx1"
host = "mx1.example.net"
probes = ["connect", "auth"]
allow_plaintext_auth = true
expect = "reject"
[targets.auth]
username = "disabled@example.test"
mechanism = "cram-md5"
password_env = "MAILCANARY_TEST_PASSWORD"

[[targets]]
name = "mx2"
host = "mx2.example.net"
probes = ["auth"]
expect = "success"
[targets.auth]
username = "probe@example.test"
password_file = "secrets/mx2.pw"

[[targets]]
name = "mx3"
host = "mx3.example.net"
tls = "implicit"
probes = ["auth"]
auth = { username = "probe@example.test", mechanism = "oauthbearer", token_file = "/run/tokens/mx3" }

[[targets]]
name = "mx4"
host = "mx4.example.net"
probes = ["auth"]
[targets.auth]
username = "probe@example.test"
mechanism = "auto"
token_file = "tokens/../tokens/mx4"
)");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    ASSERT_TRUE(result.config.has_value());

    const TargetConfig mx1{.name = "mx1",
                           .host = "mx1.example.net",
                           .port = 25,
                           .tls = TlsMode::starttls,
                           .helo = "probe.example.net",
                           .interval = 1min,
                           .timeout = 20s,
                           .probes = {"connect", "auth"},
                           .tls_options = {},
                           .auth = AuthConfig{.username = "disabled@example.test",
                                              .password_env = kPasswordVariable,
                                              .password_file = "",
                                              .token_file = "",
                                              .mechanism = AuthMechanism::cram_md5,
                                              .token_url = "",
                                              .client_id = "",
                                              .client_secret_file = "",
                                              .refresh_token_file = "",
                                              .scope = "",
                                              .token_ca_file = ""},
                           .allow_plaintext_auth = true,
                           .expect = Expectation::reject,
                           .message = std::nullopt,
                           .max_connections_per_minute = std::nullopt,
                           .throttle_backoff = 30s,
                           .probe_options = {}};
    const TargetConfig mx2{.name = "mx2",
                           .host = "mx2.example.net",
                           .port = 25,
                           .tls = TlsMode::starttls,
                           .helo = "probe.example.net",
                           .interval = 1min,
                           .timeout = 20s,
                           .probes = {"auth"},
                           .tls_options = {},
                           .auth = AuthConfig{.username = "probe@example.test",
                                              .password_env = "",
                                              .password_file = password_file.string(),
                                              .token_file = "",
                                              .mechanism = AuthMechanism::automatic,
                                              .token_url = "",
                                              .client_id = "",
                                              .client_secret_file = "",
                                              .refresh_token_file = "",
                                              .scope = "",
                                              .token_ca_file = ""},
                           .allow_plaintext_auth = false,
                           .expect = Expectation::success,
                           .message = std::nullopt,
                           .max_connections_per_minute = std::nullopt,
                           .throttle_backoff = 30s,
                           .probe_options = {}};
    const TargetConfig mx3{.name = "mx3",
                           .host = "mx3.example.net",
                           .port = 465,
                           .tls = TlsMode::implicit,
                           .helo = "probe.example.net",
                           .interval = 1min,
                           .timeout = 20s,
                           .probes = {"auth"},
                           .tls_options = {},
                           .auth = AuthConfig{.username = "probe@example.test",
                                              .password_env = "",
                                              .password_file = "",
                                              .token_file = "/run/tokens/mx3",
                                              .mechanism = AuthMechanism::oauthbearer,
                                              .token_url = "",
                                              .client_id = "",
                                              .client_secret_file = "",
                                              .refresh_token_file = "",
                                              .scope = "",
                                              .token_ca_file = ""},
                           .allow_plaintext_auth = false,
                           .expect = Expectation::success,
                           .message = std::nullopt,
                           .max_connections_per_minute = std::nullopt,
                           .throttle_backoff = 30s,
                           .probe_options = {}};
    // A token file need not exist at load; a relative one is resolved like any other path.
    const TargetConfig mx4{.name = "mx4",
                           .host = "mx4.example.net",
                           .port = 25,
                           .tls = TlsMode::starttls,
                           .helo = "probe.example.net",
                           .interval = 1min,
                           .timeout = 20s,
                           .probes = {"auth"},
                           .tls_options = {},
                           .auth = AuthConfig{.username = "probe@example.test",
                                              .password_env = "",
                                              .password_file = "",
                                              .token_file = (dir.path() / "tokens/mx4").string(),
                                              .mechanism = AuthMechanism::automatic,
                                              .token_url = "",
                                              .client_id = "",
                                              .client_secret_file = "",
                                              .refresh_token_file = "",
                                              .scope = "",
                                              .token_ca_file = ""},
                           .allow_plaintext_auth = false,
                           .expect = Expectation::success,
                           .message = std::nullopt,
                           .max_connections_per_minute = std::nullopt,
                           .throttle_backoff = 30s,
                           .probe_options = {}};
    EXPECT_EQ(result.config->targets, (std::vector<TargetConfig>{mx1, mx2, mx3, mx4}));
}

TEST(ConfigAuth, TargetWithoutAuthHasNoneAndSafeDefaults) {
    const ConfigResult result = load(kTarget);
    ASSERT_TRUE(result.config.has_value());
    const TargetConfig& target = result.config->targets.at(0);
    EXPECT_FALSE(target.auth.has_value());
    EXPECT_FALSE(target.allow_plaintext_auth);
    EXPECT_EQ(target.expect, Expectation::success);
}

TEST(ConfigAuth, PasswordEnvMustBeSet) {
    const ScopedEnv unset(kPasswordVariable, nullptr);
    expect_errors(load(auth_target_with("username = \"u\"\npassword_env = \"" +
                                        std::string(kPasswordVariable) + "\"\n")),
                  {{7, 16, "targets[1].auth.password_env",
                    "environment variable \"MAILCANARY_TEST_PASSWORD\" is not set"}});
}

TEST(ConfigAuth, PasswordEnvMustNotBeEmpty) {
    const ScopedEnv empty(kPasswordVariable, "");
    expect_errors(load(auth_target_with("username = \"u\"\npassword_env = \"" +
                                        std::string(kPasswordVariable) + "\"\n")),
                  {{7, 16, "targets[1].auth.password_env",
                    "environment variable \"MAILCANARY_TEST_PASSWORD\" is empty"}});
}

TEST(ConfigAuth, PasswordEnvSetIsAccepted) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const ConfigResult result = load(auth_target_with("username = \"u\"\npassword_env = \"" +
                                                      std::string(kPasswordVariable) + "\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->targets.at(0).auth->password_env, kPasswordVariable);
}

TEST(ConfigAuth, SecondCredentialSourceIsReportedWhereItIsGiven) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const std::string env_line = "password_env = \"" + std::string(kPasswordVariable) + "\"\n";
    expect_errors(
        load(auth_target_with("username = \"u\"\n" + env_line + "token_file = \"/t\"\n")),
        {{8, 14, "targets[1].auth.token_file",
          "give only one of password_env, password_file, token_file or the OAuth2 refresh flow "
          "(token_url, client_id, refresh_token_file); password_env is "
          "already given at line 7"}});
    // File order decides which one is second, not the order of the keys in the table.
    expect_errors(
        load(auth_target_with("token_file = \"/t\"\nusername = \"u\"\n" + env_line)),
        {{8, 16, "targets[1].auth.password_env", "token_file is already given at line 6"}});
    // A third one is reported too, and each source is still checked on its own.
    expect_errors(
        load(auth_target_with("username = \"u\"\n" + env_line +
                              "token_file = \"/t\"\npassword_file = \"/nonexistent/pw\"\n")),
        {{8, 14, "targets[1].auth.token_file", "password_env is already given at line 7"},
         {9, 17, "targets[1].auth.password_file", "does not exist"},
         {9, 17, "targets[1].auth.password_file", "password_env is already given at line 7"}});
}

TEST(ConfigAuth, TokenMechanismNeedsTokenFile) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    for (const std::string mechanism : {"xoauth2", "oauthbearer"}) {
        expect_errors(load(auth_target_with("username = \"u\"\nmechanism = \"" + mechanism +
                                            "\"\npassword_env = \"" +
                                            std::string(kPasswordVariable) + "\"\n")),
                      {{7, 13, "targets[1].auth.mechanism",
                        "mechanism \"" + mechanism +
                            "\" needs token_file or the OAuth2 refresh flow, not password_env"}});
    }
}

TEST(ConfigAuth, PasswordMechanismsAcceptEitherPasswordSource) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("pw", kFilePassword);
    for (const std::string mechanism : {"plain", "login", "cram-md5", "auto"}) {
        for (const std::string& source :
             {"password_env = \"" + std::string(kPasswordVariable) + "\"",
              "password_file = \"" + password_file.string() + "\""}) {
            const ConfigResult result = load(auth_target_with("username = \"u\"\nmechanism = \"" +
                                                              mechanism + "\"\n" + source + "\n"));
            EXPECT_TRUE(result.errors.empty())
                << mechanism << ", " << source << ": " << result.errors.front().to_string();
        }
    }
}

TEST(ConfigAuth, RelativePasswordFileIsResolvedAgainstTheConfigDirectory) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("secrets/mx1.pw", kFilePassword);
    const fs::path config_file =
        dir.write("etc/config.toml",
                  auth_target_with("username = \"u\"\npassword_file = \"../secrets/mx1.pw\"\n"));
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->targets.at(0).auth->password_file, password_file.string());
}

TEST(ConfigAuth, PasswordFileWithOnlyLineBreaksIsEmpty) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    for (const std::string_view contents : {"", "\n", "\r\n\r\n"}) {
        dir.write("mx1.pw", contents);
        const fs::path config_file = dir.write(
            "config.toml", auth_target_with("username = \"u\"\npassword_file = \"mx1.pw\"\n"));
        const ConfigResult result = load_config_file(config_file.string());
        ASSERT_EQ(result.errors.size(), 1u);
        EXPECT_EQ(result.errors[0].to_string(),
                  config_file.string() + ":7:17: targets[1].auth.password_file: password file \"" +
                      (dir.path() / "mx1.pw").string() + "\" is empty");
    }
}

TEST(ConfigAuth, UnreadablePasswordFileIsReported) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    fs::permissions(dir.write("mx1.pw", kFilePassword), fs::perms::none);
    const fs::path config_file = dir.write(
        "config.toml", auth_target_with("username = \"u\"\npassword_file = \"mx1.pw\"\n"));
    const test::FilePermissionsEnforced as_any_user;  // CI runs as root
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].line, 7u);
    EXPECT_NE(result.errors[0].message.find("is not readable"), std::string::npos);
}

TEST(ConfigAuth, ReportsEveryAuthMistakeInOneFile) {
    const ScopedEnv unset(kPasswordVariable, nullptr);
    const ConfigResult result = load(R"([[targets]]
name = "mx1"
host = "mx1.example.net"
probes = ["auth"]
expect = "rejected"
[targets.auth]
usename = "u"
mechanism = "xoauth2"
password_env = "MAILCANARY_TEST_PASSWORD"

[[targets]]
name = "mx2"
host = "mx2.example.net"
probes = ["connect", "auth"]
allow_plaintext_auth = 1

[[targets]]
name = "mx3"
host = "mx3.example.net"
expect = "reject"
[targets.auth]
username = "u"
)");
    expect_errors(result, {
                              {5, 10, "targets[1].expect", "unknown expectation \"rejected\""},
                              {6, 1, "targets[1].auth.username", "required key is missing"},
                              {7, 1, "targets[1].auth.usename", "did you mean \"username\"?"},
                              {8, 13, "targets[1].auth.mechanism", "needs token_file"},
                              {9, 16, "targets[1].auth.password_env", "is not set"},
                              {14, 10, "targets[2].probes", "needs a [targets.auth] table"},
                              {15, 24, "targets[2].allow_plaintext_auth", "expected a boolean"},
                              {20, 10, "targets[3].expect", "needs the \"auth\" probe"},
                              {21, 1, "targets[3].auth", "needs one of password_env"},
                          });
}

TEST(ConfigAuth, NoErrorMessageContainsAPassword) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    dir.write("mx1.pw", std::string(kFilePassword) + "\r\n");
    const std::string env_line = "password_env = \"" + std::string(kPasswordVariable) + "\"\n";
    const std::string file_line = "password_file = \"mx1.pw\"\n";
    const std::string token_line = "token_file = \"mx1.pw\"\n";  // a token file may hold anything
    for (const std::string& auth_fields : {
             "username = \"u\"\nmechanism = \"xoauth2\"\n" + env_line,
             "username = \"u\"\nmechanism = \"oauthbearer\"\n" + file_line,
             "username = \"u\"\nmechanism = \"plain\"\n" + token_line,
             "username = \"u\"\n" + env_line + file_line + token_line,
             "username = \"\"\nmechanism = \"digest\"\n" + file_line + "passwd = 1\n",
             "mechanism = 5\n" + env_line + "passwrd_file = \"mx1.pw\"\n",
         }) {
        const fs::path config_file =
            dir.write("config.toml", target_with("probes = [\"auth\"]\nexpect = \"nope\"\n"
                                                 "[targets.auth]\n") +
                                         auth_fields);
        const ConfigResult result = load_config_file(config_file.string());
        EXPECT_FALSE(result.errors.empty()) << auth_fields;
        expect_no_secret_in(result);
    }
}

TEST(ConfigAuth, FullRefreshFlowConfigParsesToExpectedStructs) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path refresh_token = dir.write("secrets/mx1.refresh", std::string(kRefreshToken));
    const fs::path client_secret = dir.write("secrets/client", std::string(kClientSecret) + "\n");
    const fs::path token_ca = dir.write("certs/token-ca.pem", "not checked here");
    const fs::path config_file = dir.write("etc/config.toml", R"([[targets]]
name = "mx1"
host = "smtp.example.net"
probes = ["auth"]
[targets.auth]
username = "canary@example.net"
mechanism = "xoauth2"
token_url = "https://oauth2.example.net:8443/token?tenant=a"
client_id = "mailcanary.apps.example.net"
client_secret_file = "../secrets/client"
refresh_token_file = "../secrets/./mx1.refresh"
scope = "https://mail.google.com/ offline_access"
token_ca_file = "../certs/token-ca.pem"

[[targets]]
name = "mx2"
host = "smtp2.example.net"
probes = ["auth"]
auth = { username = "u", token_url = "https://[2001:db8::1]/token", client_id = "public", refresh_token_file = "../secrets/mx1.refresh" }
)");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    ASSERT_EQ(result.config->targets.size(), 2u);

    const AuthConfig mx1{.username = "canary@example.net",
                         .password_env = "",
                         .password_file = "",
                         .token_file = "",
                         .mechanism = AuthMechanism::xoauth2,
                         .token_url = "https://oauth2.example.net:8443/token?tenant=a",
                         .client_id = "mailcanary.apps.example.net",
                         .client_secret_file = client_secret.string(),
                         .refresh_token_file = refresh_token.string(),
                         .scope = "https://mail.google.com/ offline_access",
                         .token_ca_file = token_ca.string()};
    EXPECT_EQ(result.config->targets[0].auth, mx1);
    // A public client: no client secret, no scope, the system trust store.
    const AuthConfig mx2{.username = "u",
                         .password_env = "",
                         .password_file = "",
                         .token_file = "",
                         .mechanism = AuthMechanism::automatic,
                         .token_url = "https://[2001:db8::1]/token",
                         .client_id = "public",
                         .client_secret_file = "",
                         .refresh_token_file = refresh_token.string(),
                         .scope = "",
                         .token_ca_file = ""};
    EXPECT_EQ(result.config->targets[1].auth, mx2);
}

// A refresh token and a client secret on disk, and the lines of a valid refresh flow to build
// [targets.auth] tables from; auth_target_with puts the first line given on line 6.
class ConfigRefreshFlow : public testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(dir_.path().empty());
        refresh_token_ = dir_.write("mx1.refresh", std::string(kRefreshToken) + "\n");
        client_secret_ = dir_.write("client", kClientSecret);
    }

    static std::string line(std::string_view key, std::string_view value) {
        return std::string(key) + " = \"" + std::string(value) + "\"\n";
    }
    std::string token_url_line() const {
        return line("token_url", "https://oauth2.example.net/token");
    }
    std::string client_id_line() const { return line("client_id", "mailcanary"); }
    std::string refresh_token_line() const {
        return line("refresh_token_file", refresh_token_.string());
    }
    // The three required keys, on three lines.
    std::string flow_lines() const {
        return token_url_line() + client_id_line() + refresh_token_line();
    }

    TempDir dir_;
    fs::path refresh_token_;
    fs::path client_secret_;
};

TEST_F(ConfigRefreshFlow, TokenUrlMustBeHttpsWithAHost) {
    for (const std::string_view url :
         {"http://127.0.0.1:8080/token", "http://localhost/token", "http://oauth2.example.net/",
          "HTTPS://oauth2.example.net/token", "oauth2.example.net/token", "https://",
          "https:///token", "https://:443/token", "https://host:0/token", "https://host:x/",
          "https://[::1/token", "https://[]/token", "https://[::1]x/token",
          "https://oauth 2.example.net/token", "https://oauth2.example.net/\ttoken"}) {
        SCOPED_TRACE(url);
        expect_errors(load(auth_target_with("username = \"u\"\n" + line("token_url", url) +
                                            client_id_line() + refresh_token_line())),
                      {{7, 13, "targets[1].auth.token_url", "token_url must be an https:// URL"}});
    }
    for (const std::string_view url :
         {"https://oauth2.example.net", "https://oauth2.example.net:8443/token",
          "https://[::1]:8443/token", "https://10.0.0.1/oauth2/v2.0/token?x=1#y"}) {
        const ConfigResult result =
            load(auth_target_with("username = \"u\"\n" + line("token_url", url) + client_id_line() +
                                  refresh_token_line()));
        EXPECT_TRUE(result.errors.empty()) << url << ": " << result.errors.front().to_string();
    }
}

TEST_F(ConfigRefreshFlow, TokenUrlWithUserInformationIsRefusedWithoutQuotingIt) {
    const ConfigResult result =
        load(auth_target_with("username = \"u\"\n" +
                              line("token_url", "https://client:" + std::string(kClientSecret) +
                                                    "@oauth2.example.net/token") +
                              client_id_line() + refresh_token_line()));
    expect_errors(result, {{7, 13, "targets[1].auth.token_url",
                            "must not contain user information ('user@')"}});
    expect_no_secret_in(result);
}

TEST_F(ConfigRefreshFlow, EachValueIsCheckedWhereItIsGiven) {
    const std::string missing = (dir_.path() / "missing").string();
    const fs::path empty = dir_.write("empty", "\r\n");
    const std::string head = "username = \"u\"\n";
    struct Case {
        std::string auth_fields;
        ExpectedError expected;
    };
    const std::vector<Case> cases{
        {head + line("token_url", "") + client_id_line() + refresh_token_line(),
         {7, 13, "targets[1].auth.token_url", "must not be empty"}},
        {head + "token_url = 443\n" + client_id_line() + refresh_token_line(),
         {7, 13, "targets[1].auth.token_url", "expected a string, got an integer"}},
        {head + token_url_line() + line("client_id", "") + refresh_token_line(),
         {8, 13, "targets[1].auth.client_id", "must not be empty"}},
        {head + token_url_line() + line("client_id", "a\\r\\nb") + refresh_token_line(),
         {8, 13, "targets[1].auth.client_id", "must not contain control characters"}},
        {head + token_url_line() + client_id_line() + line("refresh_token_file", missing),
         {9, 22, "targets[1].auth.refresh_token_file",
          "refresh token file \"" + missing + "\" does not exist"}},
        {head + token_url_line() + client_id_line() + line("refresh_token_file", empty.string()),
         {9, 22, "targets[1].auth.refresh_token_file",
          "refresh token file \"" + empty.string() + "\" is empty"}},
        {head + token_url_line() + client_id_line() +
             line("refresh_token_file", dir_.path().string()),
         {9, 22, "targets[1].auth.refresh_token_file", "is not a regular file"}},
        {head + flow_lines() + line("client_secret_file", empty.string()),
         {10, 22, "targets[1].auth.client_secret_file",
          "client secret file \"" + empty.string() + "\" is empty"}},
        {head + flow_lines() + line("client_secret_file", missing),
         {10, 22, "targets[1].auth.client_secret_file",
          "client secret file \"" + missing + "\" does not exist"}},
        {head + flow_lines() + line("scope", "mail\\nread"),
         {10, 9, "targets[1].auth.scope", "must not contain control characters"}},
        {head + flow_lines() + line("token_ca_file", missing),
         {10, 17, "targets[1].auth.token_ca_file", "CA file \"" + missing + "\" does not exist"}},
        {head + flow_lines() + line("token_ca_file", ""),
         {10, 17, "targets[1].auth.token_ca_file", "must not be empty"}},
        {head + flow_lines() + line("scopes", "x"),
         {10, 1, "targets[1].auth.scopes", "unknown key; did you mean \"scope\"?"}},
        {head + flow_lines() + line("token_uri", "x"),
         {10, 1, "targets[1].auth.token_uri", "unknown key; did you mean \"token_url\"?"}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.auth_fields);
        const ConfigResult result = load(auth_target_with(c.auth_fields));
        expect_errors(result, {c.expected});
        expect_no_secret_in(result);
    }
}

TEST_F(ConfigRefreshFlow, EachMissingRequiredKeyIsReportedAtTheTable) {
    const std::string head = "username = \"u\"\n";
    const std::string why = "required key is missing; the OAuth2 refresh flow needs it";
    expect_errors(load(auth_target_with(head + client_id_line() + refresh_token_line())),
                  {{5, 1, "targets[1].auth.token_url", why}});
    expect_errors(load(auth_target_with(head + token_url_line() + refresh_token_line())),
                  {{5, 1, "targets[1].auth.client_id", why}});
    expect_errors(load(auth_target_with(head + token_url_line() + client_id_line())),
                  {{5, 1, "targets[1].auth.refresh_token_file", why}});
    // Any key of the flow means the flow is used, the optional ones included.
    expect_errors(load(auth_target_with(head + line("scope", "x"))),
                  {{5, 1, "targets[1].auth.token_url", why},
                   {5, 1, "targets[1].auth.client_id", why},
                   {5, 1, "targets[1].auth.refresh_token_file", why}});
    expect_errors(
        load(target_with("probes = [\"auth\"]\nauth = { username = \"u\", client_id = \"c\" }\n")),
        {{5, 8, "targets[1].auth.token_url", why},
         {5, 8, "targets[1].auth.refresh_token_file", why}});
}

TEST_F(ConfigRefreshFlow, IsOneCredentialSourceAmongTheOthers) {
    const std::string head = "username = \"u\"\n";
    const std::string password_line = line("password_file", client_secret_.string());
    const std::string choices =
        "give only one of password_env, password_file, token_file or the OAuth2 refresh flow "
        "(token_url, client_id, refresh_token_file); ";
    // The flow after another source: reported at its first key.
    expect_errors(load(auth_target_with(head + password_line + flow_lines())),
                  {{8, 13, "targets[1].auth.token_url",
                    choices + "password_file is already given at line 7"}});
    expect_errors(load(auth_target_with(head + password_line + client_id_line() + token_url_line() +
                                        refresh_token_line())),
                  {{8, 13, "targets[1].auth.client_id", "password_file is already given"}});
    // Another source after the flow, even one amid the flow's keys.
    expect_errors(load(auth_target_with(head + token_url_line() + password_line + client_id_line() +
                                        refresh_token_line())),
                  {{8, 17, "targets[1].auth.password_file",
                    choices + "the OAuth2 refresh flow (token_url) is already given at line 7"}});
    expect_errors(load(auth_target_with(head + flow_lines() + "token_file = \"/t\"\n")),
                  {{10, 14, "targets[1].auth.token_file",
                    "the OAuth2 refresh flow (token_url) is already given at line 7"}});
    // Several keys of the flow are one source: no error among themselves.
    const ConfigResult result = load(
        auth_target_with(head + flow_lines() + line("client_secret_file", client_secret_.string()) +
                         line("scope", "s") + line("token_ca_file", client_secret_.string())));
    EXPECT_TRUE(result.errors.empty()) << result.errors.front().to_string();
}

TEST_F(ConfigRefreshFlow, YieldsATokenForTheTokenMechanismsOnly) {
    for (const std::string mechanism : {"auto", "xoauth2", "oauthbearer"}) {
        const ConfigResult result = load(
            auth_target_with("username = \"u\"\n" + line("mechanism", mechanism) + flow_lines()));
        EXPECT_TRUE(result.errors.empty())
            << mechanism << ": " << result.errors.front().to_string();
    }
    for (const std::string mechanism : {"plain", "login", "cram-md5"}) {
        expect_errors(
            load(auth_target_with("username = \"u\"\n" + line("mechanism", mechanism) +
                                  flow_lines())),
            {{7, 13, "targets[1].auth.mechanism",
              "mechanism \"" + mechanism +
                  "\" needs password_env or password_file, not the OAuth2 refresh flow"}});
    }
}

TEST_F(ConfigRefreshFlow, NoErrorMessageContainsATokenOrSecret) {
    const std::string secret_lines = line("refresh_token_file", refresh_token_.string()) +
                                     line("client_secret_file", client_secret_.string());
    for (const std::string& auth_fields : {
             "username = \"u\"\nmechanism = \"plain\"\n" + token_url_line() + secret_lines,
             "mechanism = \"cram-md5\"\nclient_id = \"\"\n" + secret_lines + "scope = 1\n",
             "username = \"u\"\ntoken_url = \"http://x\"\n" + secret_lines + "password_file = \"" +
                 refresh_token_.string() + "\"\n",
             "username = \"u\"\n" + secret_lines + "token_ca_file = \"/nonexistent\"\n",
         }) {
        const ConfigResult result = load(auth_target_with(auth_fields));
        EXPECT_FALSE(result.errors.empty()) << auth_fields;
        expect_no_secret_in(result);
    }
}

TEST(ConfigMessage, FullMessageConfigParsesToExpectedStructs) {
    const ConfigResult result = load(R"([[targets]]
name = "mx1"
host = "mx1.example.net"
probes = ["connect", "accept"]
[targets.message]
from = "canary@example.org"
to = ["probe@example.test", "probe+2@sub.example.test"]
subject = "mailcanary probe to mx1 \u00e9"
mode = "rcpt"
[targets.message.headers]
X-Team = "mail-ops"
"x-a" = ""
A-Priority = "low; urgent = no"
Reply-To = "ops@example.org"

[[targets]]
name = "mx2"
host = "mx2.example.net"
probes = ["accept"]
message = { from = "c@example.org", to = ["p@example.test"] }

[[targets]]
name = "mx3"
host = "mx3.example.net"
[targets.message]
from = "c@example.org"
to = ["p@example.test"]
)");
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    ASSERT_TRUE(result.config.has_value());
    const std::vector<TargetConfig>& targets = result.config->targets;
    ASSERT_EQ(targets.size(), 3u);

    // Headers come in toml++'s order: names sorted byte by byte, so upper case first.
    const MessageConfig mx1{.from = "canary@example.org",
                            .to = {"probe@example.test", "probe+2@sub.example.test"},
                            .subject = "mailcanary probe to mx1 \xc3\xa9",
                            .headers = {{"A-Priority", "low; urgent = no"},
                                        {"Reply-To", "ops@example.org"},
                                        {"X-Team", "mail-ops"},
                                        {"x-a", ""}},
                            .mode = AcceptMode::rcpt,
                            .max_messages_per_hour = std::nullopt};
    EXPECT_EQ(targets[0].message, mx1);
    EXPECT_EQ(targets[0].probes, (std::vector<std::string>{"connect", "accept"}));
    EXPECT_FALSE(targets[0].auth.has_value());

    const MessageConfig mx2{.from = "c@example.org",
                            .to = {"p@example.test"},
                            .subject = "mailcanary probe",
                            .headers = {},
                            .mode = AcceptMode::data,
                            .max_messages_per_hour = std::nullopt};
    EXPECT_EQ(targets[1].message, mx2);
    // Like [targets.auth], a message table is allowed without the probe that uses it.
    EXPECT_EQ(targets[2].message, mx2);
    EXPECT_EQ(targets[2].probes, std::vector<std::string>{"connect"});
}

TEST(ConfigMessage, TargetWithoutMessageHasNone) {
    const ConfigResult result = load(kTarget);
    ASSERT_TRUE(result.config.has_value());
    EXPECT_FALSE(result.config->targets.at(0).message.has_value());
}

TEST(ConfigMessage, LongestAcceptedValues) {
    const std::string address = std::string(64, 'l') + "@" + std::string(189, 'd');  // 254
    const ConfigResult result = load(target_with(
        "probes = [\"accept\"]\n[targets.message]\nfrom = \"" + address + "\"\nto = [\"" + address +
        "\"]\nsubject = \"" + std::string(200, 's') + "\"\n[targets.message.headers]\n" + "X-" +
        std::string(74, 'n') + " = \"" + std::string(900, 'v') + "\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const MessageConfig& message = *result.config->targets.at(0).message;
    EXPECT_EQ(message.from.size(), 254u);
    EXPECT_EQ(message.subject.size(), 200u);
    ASSERT_EQ(message.headers.size(), 1u);
    EXPECT_EQ(message.headers[0].first.size(), 76u);
    EXPECT_EQ(message.headers[0].second.size(), 900u);
}

TEST(ConfigMessage, ReportsEveryMessageMistakeInOneFile) {
    const ConfigResult result = load(R"([defaults]
probes = ["auth", "accept"]

[[targets]]
name = "mx1"
host = "mx1.example.net"

[[targets]]
name = "mx2"
host = "mx2.example.net"
probes = ["accept"]
[targets.message]
form = "canary@example.org"
to = ["a@example.test", "b", "a@example.test", 7]
subject = "two\nlines"
mode = "data "
[targets.message.headers]
Subject = "again"
"Bad Name" = 1
X-Ok = "fine"
)");
    expect_errors(
        result,
        {
            {4, 1, "targets[1].auth", "probe \"auth\" needs a [targets.auth] table"},
            {4, 1, "targets[1].message", "probe \"accept\" needs a [targets.message] table"},
            {12, 1, "targets[2].message.from", "required key is missing"},
            {13, 1, "targets[2].message.form", "did you mean \"from\"?"},
            {14, 25, "targets[2].message.to[2]", "invalid address \"b\": needs exactly one '@'"},
            {14, 30, "targets[2].message.to[3]", "duplicate entry \"a@example.test\""},
            {14, 48, "targets[2].message.to[4]", "expected a string, got an integer"},
            {15, 11, "targets[2].message.subject", "control characters"},
            {16, 8, "targets[2].message.mode", "unknown accept mode \"data \""},
            {18, 1, "targets[2].message.headers.Subject", "header \"Subject\" is set by the agent"},
            {19, 1, "targets[2].message.headers.Bad Name", "must be printable ASCII"},
            {19, 14, "targets[2].message.headers.Bad Name", "expected a string, got an integer"},
        });
}

TEST(ConfigRoundtrip, MinimalTableGetsDefaults) {
    const ConfigResult result = load(roundtrip_target_with(""));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const RoundtripConfig expected{.imap_host = "mx1.example.net",
                                   .imap_port = 993,
                                   .imap_tls = TlsMode::implicit,
                                   .tls_options = {},
                                   .auth = AuthConfig{.username = "u",
                                                      .password_env = "",
                                                      .password_file = "",
                                                      .token_file = "/t",
                                                      .mechanism = AuthMechanism::automatic,
                                                      .token_url = "",
                                                      .client_id = "",
                                                      .client_secret_file = "",
                                                      .refresh_token_file = "",
                                                      .scope = "",
                                                      .token_ca_file = ""},
                                   .mailbox = "INBOX",
                                   .junk_folders = std::nullopt,
                                   .timeout = 2min,
                                   .cleanup = CleanupMode::delete_message,
                                   .delete_method = DeleteMethod::automatic,
                                   .idle = true,
                                   .poll_interval = 1s,
                                   .authserv_id = "",
                                   .bounce_mailbox = ""};
    EXPECT_EQ(*roundtrip_of(result.config->targets.at(0)), expected);
}

TEST(ConfigRoundtrip, DeleteMethodIsRead) {
    for (const auto& [text, method] :
         {std::pair{"auto", DeleteMethod::automatic}, std::pair{"expunge", DeleteMethod::expunge},
          std::pair{"via_trash", DeleteMethod::via_trash}}) {
        const ConfigResult result =
            load(roundtrip_target_with("delete_method = \"" + std::string(text) + "\"\n"));
        ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
        EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->delete_method, method) << text;
    }
}

TEST(ConfigRoundtrip, TargetWithoutRoundtripHasNone) {
    const ConfigResult result = load(kTarget);
    ASSERT_TRUE(result.config.has_value());
    EXPECT_FALSE((roundtrip_of(result.config->targets.at(0)) != nullptr));
}

TEST(ConfigRoundtrip, ImapPortDefaultsFollowImapTls) {
    for (const auto& [tls, mode, port] :
         {std::tuple{"implicit", TlsMode::implicit, 993},
          std::tuple{"starttls", TlsMode::starttls, 143}, std::tuple{"none", TlsMode::none, 143}}) {
        SCOPED_TRACE(tls);
        const ConfigResult result =
            load(roundtrip_target_with("imap_tls = \"" + std::string(tls) + "\"\n"));
        ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
        EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->imap_tls, mode);
        EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->imap_port, port);
    }
    const ConfigResult explicit_port =
        load(roundtrip_target_with("imap_tls = \"starttls\"\nimap_port = 10143\n"));
    ASSERT_TRUE(explicit_port.errors.empty()) << explicit_port.errors.front().to_string();
    EXPECT_EQ(roundtrip_of(explicit_port.config->targets.at(0))->imap_port, 10143);
    // The IMAP port does not follow the target's SMTP TLS mode.
    const ConfigResult smtp_implicit =
        load(target_with("tls = \"implicit\"\n[targets.roundtrip]\nusername = \"u\"\n"
                         "token_file = \"/t\"\nimap_tls = \"starttls\"\n"));
    ASSERT_TRUE(smtp_implicit.errors.empty()) << smtp_implicit.errors.front().to_string();
    EXPECT_EQ(smtp_implicit.config->targets.at(0).port, 465);
    EXPECT_EQ(roundtrip_of(smtp_implicit.config->targets.at(0))->imap_port, 143);
}

TEST(ConfigRoundtrip, FullRoundtripConfigParsesToExpectedStructs) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("secrets/imap.pw", std::string(kFilePassword) + "\n");
    const fs::path refresh_token = dir.write("secrets/imap.refresh", std::string(kRefreshToken));
    const fs::path ca_file = dir.write("certs/imap-ca.pem", "not checked here");
    const fs::path config_file = dir.write("etc/config.toml", R"([[targets]]
name = "mx1"
host = "mx1.example.net"
[targets.message]
from = "canary@example.org"
to = ["probe@example.net"]
[targets.roundtrip]
imap_host = "imap.example.net"
imap_port = 1143
imap_tls = "starttls"
username = "probe@example.net"
mechanism = "login"
password_file = "../secrets/imap.pw"
mailbox = "Canary/Inbox"
junk_folders = ["Junk", "[Gmail]/Spam", "Courrier ind\u00e9sirable"]
timeout = "5m"
cleanup = "trash"
idle = false
poll_interval = "250ms"
prompt_checks = false
authserv_id = "mx.example.net"
bounce_mailbox = "Canary/Bounces"
[targets.roundtrip.tls_options]
ca_file = "../certs/./imap-ca.pem"
server_name = "imap.internal.example.net"
insecure_skip_verify = true
min_version = "1.3"

[[targets]]
name = "mx2"
host = "2001:db8::25"
roundtrip = { username = "u", mechanism = "xoauth2", token_url = "https://oauth2.example.net/token", client_id = "c", refresh_token_file = "../secrets/imap.refresh", junk_folders = [], cleanup = "keep" }
)");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    ASSERT_EQ(result.config->targets.size(), 2u);

    const RoundtripConfig mx1{
        .imap_host = "imap.example.net",
        .imap_port = 1143,
        .imap_tls = TlsMode::starttls,
        .tls_options = {.ca_file = ca_file.string(),
                        .server_name = "imap.internal.example.net",
                        .insecure_skip_verify = true,
                        .min_version = TlsVersion::v1_3},
        .auth = AuthConfig{.username = "probe@example.net",
                           .password_env = "",
                           .password_file = password_file.string(),
                           .token_file = "",
                           .mechanism = AuthMechanism::login,
                           .token_url = "",
                           .client_id = "",
                           .client_secret_file = "",
                           .refresh_token_file = "",
                           .scope = "",
                           .token_ca_file = ""},
        .mailbox = "Canary/Inbox",
        .junk_folders =
            std::vector<std::string>{"Junk", "[Gmail]/Spam", "Courrier ind\xc3\xa9sirable"},
        .timeout = 5min,
        .cleanup = CleanupMode::trash,
        .idle = false,
        .poll_interval = 250ms,
        .prompt_checks = false,
        .authserv_id = "mx.example.net",
        .bounce_mailbox = "Canary/Bounces"};
    EXPECT_EQ(*roundtrip_of(result.config->targets[0]), mx1);
    // Like [targets.auth] and [targets.message], parsed without the probe that uses it.
    EXPECT_EQ(result.config->targets[0].probes, std::vector<std::string>{"connect"});
    // SMTP settings are not taken over: the target's own TLS options stay empty.
    EXPECT_EQ(result.config->targets[0].tls_options, TlsOptions{});

    const RoundtripConfig mx2{.imap_host = "2001:db8::25",
                              .imap_port = 993,
                              .imap_tls = TlsMode::implicit,
                              .tls_options = {},
                              .auth = AuthConfig{.username = "u",
                                                 .password_env = "",
                                                 .password_file = "",
                                                 .token_file = "",
                                                 .mechanism = AuthMechanism::xoauth2,
                                                 .token_url = "https://oauth2.example.net/token",
                                                 .client_id = "c",
                                                 .client_secret_file = "",
                                                 .refresh_token_file = refresh_token.string(),
                                                 .scope = "",
                                                 .token_ca_file = ""},
                              .mailbox = "INBOX",
                              .junk_folders = std::vector<std::string>{},  // set: look in none
                              .timeout = 2min,
                              .cleanup = CleanupMode::keep,
                              .idle = true,
                              .poll_interval = 1s,
                              .authserv_id = "",
                              .bounce_mailbox = ""};
    EXPECT_EQ(*roundtrip_of(result.config->targets[1]), mx2);
    EXPECT_FALSE(result.config->targets[1].auth.has_value());
}

TEST(ConfigRoundtrip, CredentialsAreIndependentOfTargetsAuth) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const ConfigResult result =
        load(target_with("[targets.auth]\nusername = \"smtp-user\"\ntoken_file = \"/smtp-token\"\n"
                         "[targets.roundtrip]\nusername = \"imap-user\"\nmechanism = \"plain\"\n"
                         "password_env = \"" +
                         std::string(kPasswordVariable) + "\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const TargetConfig& target = result.config->targets.at(0);
    EXPECT_EQ(target.auth->username, "smtp-user");
    EXPECT_EQ(target.auth->token_file, "/smtp-token");
    EXPECT_EQ(roundtrip_of(target)->auth.username, "imap-user");
    EXPECT_EQ(roundtrip_of(target)->auth.password_env, kPasswordVariable);
    EXPECT_EQ(roundtrip_of(target)->auth.mechanism, AuthMechanism::plain);
}

TEST(ConfigRoundtrip, EveryImapMechanismIsAcceptedWithItsKindOfSecret) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const std::string env_line = "password_env = \"" + std::string(kPasswordVariable) + "\"\n";
    for (const auto& [mechanism, value, source] :
         {std::tuple{"auto", AuthMechanism::automatic, env_line},
          std::tuple{"plain", AuthMechanism::plain, env_line},
          std::tuple{"login", AuthMechanism::login, env_line},
          std::tuple{"xoauth2", AuthMechanism::xoauth2, std::string("token_file = \"/t\"\n")},
          std::tuple{"oauthbearer", AuthMechanism::oauthbearer,
                     std::string("token_file = \"/t\"\n")}}) {
        SCOPED_TRACE(mechanism);
        const ConfigResult result = load(roundtrip_credentials_with(
            "username = \"u\"\nmechanism = \"" + std::string(mechanism) + "\"\n" + source));
        ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
        EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->auth.mechanism, value);
    }
}

TEST(ConfigRoundtrip, SecondCredentialSourceIsReportedWhereItIsGiven) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const ConfigResult result =
        load(roundtrip_target_with("password_env = \"" + std::string(kPasswordVariable) + "\"\n"));
    expect_errors(result, {{7, 16, "targets[1].roundtrip.password_env",
                            "give only one of password_env, password_file, token_file or the "
                            "OAuth2 refresh flow (token_url, client_id, refresh_token_file); "
                            "token_file is already given at line 6"}});
    expect_no_secret_in(result);
}

TEST(ConfigRoundtrip, PasswordEnvMustBeSet) {
    const ScopedEnv unset(kPasswordVariable, nullptr);
    expect_errors(load(roundtrip_credentials_with("username = \"u\"\npassword_env = \"" +
                                                  std::string(kPasswordVariable) + "\"\n")),
                  {{6, 16, "targets[1].roundtrip.password_env",
                    "environment variable \"MAILCANARY_TEST_PASSWORD\" is not set"}});
}

TEST_F(ConfigRefreshFlow, WorksInTheRoundtripTableAsInTheAuthTable) {
    const ConfigResult result = load(roundtrip_credentials_with(
        "username = \"u\"\nmechanism = \"oauthbearer\"\n" + flow_lines() +
        line("client_secret_file", client_secret_.string()) + line("scope", "imap")));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const AuthConfig& auth = roundtrip_of(result.config->targets.at(0))->auth;
    EXPECT_EQ(auth.token_url, "https://oauth2.example.net/token");
    EXPECT_EQ(auth.client_id, "mailcanary");
    EXPECT_EQ(auth.refresh_token_file, refresh_token_.string());
    EXPECT_EQ(auth.client_secret_file, client_secret_.string());
    EXPECT_EQ(auth.scope, "imap");

    const std::string why = "required key is missing; the OAuth2 refresh flow needs it";
    expect_errors(load(roundtrip_credentials_with("username = \"u\"\n" + client_id_line())),
                  {{4, 1, "targets[1].roundtrip.token_url", why},
                   {4, 1, "targets[1].roundtrip.refresh_token_file", why}});
    expect_errors(load(roundtrip_credentials_with("username = \"u\"\nmechanism = \"login\"\n" +
                                                  flow_lines())),
                  {{6, 13, "targets[1].roundtrip.mechanism",
                    "mechanism \"login\" needs password_env or password_file, not the OAuth2 "
                    "refresh flow"}});
    expect_errors(load(roundtrip_credentials_with(
                      "username = \"u\"\n" + line("token_url", "http://oauth2.example.net/token") +
                      client_id_line() + refresh_token_line())),
                  {{6, 13, "targets[1].roundtrip.token_url", "token_url must be an https:// URL"}});
}

TEST(ConfigRoundtrip, RelativePathsAreResolvedAgainstTheConfigDirectory) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("secrets/imap.pw", kFilePassword);
    const fs::path ca_file = dir.write("certs/imap-ca.pem", "x");
    const fs::path config_file = dir.write(
        "etc/config.toml",
        roundtrip_credentials_with("username = \"u\"\npassword_file = \"../secrets/imap.pw\"\n"
                                   "[targets.roundtrip.tls_options]\n"
                                   "ca_file = \"../certs/imap-ca.pem\"\n"));
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const RoundtripConfig& roundtrip = *roundtrip_of(result.config->targets.at(0));
    EXPECT_EQ(roundtrip.auth.password_file, password_file.string());
    EXPECT_EQ(roundtrip.tls_options.ca_file, ca_file.string());
}

// As for SMTP AUTH, the rule is kept by the probe at run time (it refuses to send credentials
// without TLS unless allow_plaintext_auth is true), not at load: both configurations are valid.
TEST(ConfigRoundtrip, PlaintextImapIsLeftToAllowPlaintextAuthAtRunTime) {
    for (const bool allow : {false, true}) {
        const ConfigResult result = load(target_with(
            "allow_plaintext_auth = " + std::string(allow ? "true" : "false") +
            "\n[targets.roundtrip]\nusername = \"u\"\ntoken_file = \"/t\"\nimap_tls = \"none\"\n"));
        ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
        const TargetConfig& target = result.config->targets.at(0);
        EXPECT_EQ(target.allow_plaintext_auth, allow);
        EXPECT_EQ(roundtrip_of(target)->imap_tls, TlsMode::none);
        EXPECT_EQ(roundtrip_of(target)->imap_port, 143);
    }
}

TEST(ConfigRoundtrip, TimeoutMayExceedTheTargetsInterval) {
    const ConfigResult result =
        load(target_with("interval = \"30s\"\ntimeout = \"10s\"\n[targets.roundtrip]\n"
                         "username = \"u\"\ntoken_file = \"/t\"\ntimeout = \"1d\"\n"
                         "poll_interval = \"1h\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->timeout, 24h);
    EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->poll_interval, 1h);
    EXPECT_EQ(result.config->targets.at(0).timeout, 10s);
}

TEST(ConfigRoundtrip, ShortestAcceptedPollInterval) {
    const ConfigResult result = load(roundtrip_target_with("poll_interval = \"10ms\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(roundtrip_of(result.config->targets.at(0))->poll_interval, 10ms);
}

TEST(ConfigRoundtrip, ReportsEveryRoundtripMistakeInOneFile) {
    const ConfigResult result = load(R"([[targets]]
name = "mx1"
host = "mx1.example.net"
[targets.roundtrip]
imap_host = "[::1]"
imap_port = 0
imap_tls = "tls"
usernme = "u"
mechanism = "cram-md5"
mailbox = ""
junk_folders = ["Junk", "Junk"]
timeout = "0s"
cleanup = "purge"
idle = 1
poll_interval = "1ms"
authserv_id = ""
[targets.roundtrip.tls_options]
ca_fle = "ca.pem"

[[targets]]
name = "mx2"
host = "mx2.example.net"
roundtrip = { username = "u" }
)");
    expect_errors(
        result, {
                    {4, 1, "targets[1].roundtrip.username", "required key is missing"},
                    {4, 1, "targets[1].roundtrip", "needs one of password_env"},
                    {5, 13, "targets[1].roundtrip.imap_host", "without brackets"},
                    {6, 13, "targets[1].roundtrip.imap_port", "must be between 1 and 65535, got 0"},
                    {7, 12, "targets[1].roundtrip.imap_tls", "unknown TLS mode \"tls\""},
                    {8, 1, "targets[1].roundtrip.usernme", "did you mean \"username\"?"},
                    {9, 13, "targets[1].roundtrip.mechanism", "is not supported for IMAP"},
                    {10, 11, "targets[1].roundtrip.mailbox", "must not be empty"},
                    {11, 25, "targets[1].roundtrip.junk_folders[2]", "duplicate entry \"Junk\""},
                    {12, 11, "targets[1].roundtrip.timeout", "must be greater than 0"},
                    {13, 11, "targets[1].roundtrip.cleanup", "unknown cleanup mode \"purge\""},
                    {14, 8, "targets[1].roundtrip.idle", "expected a boolean, got an integer"},
                    {15, 17, "targets[1].roundtrip.poll_interval", "must be between 10ms and 1h"},
                    {16, 15, "targets[1].roundtrip.authserv_id", "must not be empty"},
                    {18, 1, "targets[1].roundtrip.tls_options.ca_fle", "did you mean \"ca_file\"?"},
                    {23, 13, "targets[2].roundtrip", "needs one of password_env"},
                });
}

TEST(ConfigRoundtrip, NoErrorMessageContainsAPassword) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    dir.write("imap.pw", std::string(kFilePassword) + "\r\n");
    const std::string env_line = "password_env = \"" + std::string(kPasswordVariable) + "\"\n";
    const std::string file_line = "password_file = \"imap.pw\"\n";
    for (const std::string& fields : {
             "username = \"u\"\nmechanism = \"xoauth2\"\n" + env_line,
             "username = \"u\"\nmechanism = \"cram-md5\"\n" + file_line,
             "username = \"u\"\n" + env_line + file_line + "mailbox = \"\"\n",
             "mechanism = 5\n" + env_line + "pasword = 1\n",
         }) {
        const fs::path config_file = dir.write("config.toml", roundtrip_credentials_with(fields));
        const ConfigResult result = load_config_file(config_file.string());
        EXPECT_FALSE(result.errors.empty()) << fields;
        expect_no_secret_in(result);
    }
}

// These name the probe in `probes`, so they need "roundtrip" in the probe table.
TEST(ConfigRoundtripProbe, IsAKnownProbe) {
    const ConfigResult result = load(target_with("probes = [\"roundtip\"]\n"));
    expect_errors(result, {{4, 11, "targets[1].probes[1]",
                            "unknown probe \"roundtip\"; did you mean \"roundtrip\"?"}});
}

TEST(ConfigRoundtripProbe, RunsWithMessageAndRoundtripTables) {
    const ConfigResult result =
        load(target_with("probes = [\"connect\", \"roundtrip\"]\n" + std::string(kMessageTable) +
                         "[targets.roundtrip]\nusername = \"u\"\n"
                         "token_file = \"/t\"\n"));
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    const TargetConfig& target = result.config->targets.at(0);
    EXPECT_EQ(target.probes, (std::vector<std::string>{"connect", "roundtrip"}));
    EXPECT_TRUE(target.message.has_value());
    EXPECT_TRUE((roundtrip_of(target) != nullptr));
}

TEST(ConfigRoundtripProbe, NeedsAMessageThatIsSent) {
    expect_errors(
        load(target_with("probes = [\"roundtrip\"]\n" + std::string(kMessageTable) +
                         "mode = \"rcpt\"\n[targets.roundtrip]\nusername = \"u\"\n"
                         "token_file = \"/t\"\n")),
        {{8, 8, "targets[1].message.mode",
          "\"rcpt\" sends no message, and the \"roundtrip\" probe follows one: use mode = "
          "\"data\""}});
}

TEST(ConfigRoundtripProbe, NeedsAMessageTable) {
    expect_errors(
        load(target_with("probes = [\"roundtrip\"]\n[targets.roundtrip]\nusername = "
                         "\"u\"\ntoken_file = \"/t\"\n")),
        {{4, 10, "targets[1].probes", "probe \"roundtrip\" needs a [targets.message] table"}});
}

TEST(ConfigRoundtripProbe, NeedsARoundtripTable) {
    expect_errors(
        load(target_with("probes = [\"roundtrip\"]\n" + std::string(kMessageTable))),
        {{4, 10, "targets[1].probes", "probe \"roundtrip\" needs a [targets.roundtrip] table"}});
}

TEST(ConfigRoundtripProbe, NeedsBothTablesWhenProbesComeFromDefaults) {
    expect_errors(load("[defaults]\nprobes = [\"roundtrip\"]\n" + std::string(kTarget)),
                  {{3, 1, "targets[1].message",
                    "probe \"roundtrip\" needs a [targets.message] table (probes from [defaults])"},
                   {3, 1, "targets[1].roundtrip",
                    "probe \"roundtrip\" needs a [targets.roundtrip] table (probes from "
                    "[defaults])"}});
}

TEST(ConfigRoundtripProbe, InvalidRoundtripTableGivesNoFollowUp) {
    expect_errors(
        load(target_with("probes = [\"roundtrip\"]\nroundtrip = 1\n" + std::string(kMessageTable))),
        {{5, 13, "targets[1].roundtrip", "expected a table, got an integer"}});
}

TEST(ConfigSecretFile, DefaultsToAFileBesideTheConfig) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path config_file = dir.write("etc/mailcanary/config.toml", "");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.secret_file,
              (dir.path() / "etc/mailcanary/mailcanary.secret").string());
    EXPECT_FALSE(fs::exists(result.config->agent.secret_file));  // not created at load
}

TEST(ConfigSecretFile, DefaultIsAbsoluteForARelativeConfigPath) {
    const ConfigResult result = load("");
    ASSERT_TRUE(result.config.has_value());
    const fs::path secret_file = result.config->agent.secret_file;
    EXPECT_TRUE(secret_file.is_absolute()) << secret_file;
    EXPECT_EQ(secret_file, fs::current_path() / "mailcanary.secret");
}

TEST(ConfigSecretFile, RelativeOverrideIsResolvedAgainstTheConfigDirectory) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path config_file =
        dir.write("etc/config.toml", "[agent]\nsecret_file = \"../keys/./canary.key\"\n");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.secret_file, (dir.path() / "keys/canary.key").string());
}

TEST(ConfigSecretFile, ExistingRegularFileAndAbsolutePathAreAccepted) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path secret = dir.write("canary.key", "0123456789abcdef");
    fs::permissions(secret, fs::perms::owner_read | fs::perms::owner_write);
    const ConfigResult result = load("[agent]\nsecret_file = \"" + secret.string() + "\"\n");
    ASSERT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.secret_file, secret.string());
}

TEST(ConfigSecretFile, DirectoryIsReportedWithItsResolvedPath) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    fs::create_directories(dir.path() / "keys");
    const fs::path config_file = dir.write("config.toml", "[agent]\nsecret_file = \"keys\"\n");
    const ConfigResult result = load_config_file(config_file.string());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(),
              config_file.string() + ":2:15: agent.secret_file: secret file \"" +
                  (dir.path() / "keys").string() + "\" is not a regular file");
}

TEST(ConfigLoad, MissingFileIsOneErrorWithoutLocation) {
    const ConfigResult result = load_config_file("/nonexistent/mailcanary.toml");
    EXPECT_FALSE(result.config.has_value());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].line, 0u);
    EXPECT_EQ(result.errors[0].to_string(),
              "/nonexistent/mailcanary.toml: cannot read config file: No such file or directory");
}

TEST(ConfigLoad, DirectoryIsNotAConfigFile) {
    const ConfigResult result = load_config_file("/");
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(), "/: cannot read config file: is a directory");
}

TEST(ConfigError, ToStringIsFileLineColumnKeyMessage) {
    const ConfigError error{"a.toml", 3, 7, "targets[1].port", "expected an integer"};
    EXPECT_EQ(error.to_string(), "a.toml:3:7: targets[1].port: expected an integer");
    const ConfigError syntax{"a.toml", 1, 5, "", "expected value"};
    EXPECT_EQ(syntax.to_string(), "a.toml:1:5: expected value");
}

TEST(ConfigLoad, NeverThrowsOnHostileInput) {
    const std::string deep_arrays = "a = " + std::string(2000, '[') + std::string(2000, ']');
    const std::string deep_tables = "a = " + [] {
        std::string text;
        for (int i = 0; i < 1000; ++i) text += "{b = ";
        return text + "1" + std::string(1000, '}');
    }();
    for (const std::string& text :
         {std::string("\xff\xfe\x00", 3), std::string("[[targets]]\n[targets]\n"),
          std::string("targets = [[]]\n"), std::string("[agent.listen_addresses]\n"),
          std::string("x = 99999999999999999999\n"), deep_arrays, deep_tables,
          std::string("[[targets]]\nname = \"\\u0000\"\nhost = \"a\"\n")}) {
        const ConfigResult result = load(text);
        EXPECT_FALSE(result.errors.empty()) << text.substr(0, 40);
    }
}

}  // namespace
}  // namespace mailcanary

namespace mailcanary {
namespace {

TEST(ConfigDurations, AreAtMostOneDay) {
    const auto result = load_config_string("[defaults]\ninterval = \"2d\"\n", "limits.toml");
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(),
              "limits.toml:2:12: defaults.interval: must be at most 1d, got 2d");
}

}  // namespace
}  // namespace mailcanary

namespace mailcanary {
namespace {

TEST(ConfigTlsName, ServerNameCannotHideANulOrAScope) {
    const auto result = load_config_string(
        "[[targets]]\nname = \"a\"\nhost = \"mx.example.com\"\n[targets.tls_options]\n"
        "server_name = \"mx.example.com\\u0000.evil\"\n"
        "[[targets]]\nname = \"b\"\nhost = \"mx.example.com\"\n[targets.tls_options]\n"
        "server_name = \"fe80::1%eth0\"\n",
        "names.toml");
    ASSERT_EQ(result.errors.size(), 2u);
    EXPECT_EQ(result.errors[0].to_string(),
              "names.toml:5:15: targets[1].tls_options.server_name: must not contain spaces or "
              "control characters");
    EXPECT_EQ(result.errors[1].to_string(),
              "names.toml:10:15: targets[2].tls_options.server_name: a scoped IPv6 address cannot "
              "be checked "
              "against a certificate");
}

constexpr std::string_view kThreeShards = R"([agent]
shard_count = 3
shard_index = 2
)";

TEST(ConfigShard, DefaultIsOneAgentWithEveryTarget) {
    const auto result = load(target_with(""));
    ASSERT_TRUE(result.config) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.shard, (Shard{0, 1}));
}

TEST(ConfigShard, FileSetsTheShard) {
    const auto result = load(kThreeShards);
    ASSERT_TRUE(result.config) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.shard, (Shard{2, 3}));
}

TEST(ConfigShard, FlagsWinOverTheFile) {
    const auto result =
        load_config_string(kThreeShards, std::string(kFile), {ShardIndexSetting{4u}, 5u});
    ASSERT_TRUE(result.config) << result.errors.front().to_string();
    EXPECT_EQ(result.config->agent.shard, (Shard{4, 5}));
}

TEST(ConfigShard, AnIndexFromAFlagIsBlamedOnTheFlag) {
    const auto result =
        load_config_string(kThreeShards, std::string(kFile), {ShardIndexSetting{7u}, {}});
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(),
              "command line: --shard.index: shard index 7 must be less than shard_count 3");
}

TEST(ConfigShard, ACountFromAFlagIsNamedWhenTheIndexIsTooHigh) {
    const auto result = load_config_string(kThreeShards, std::string(kFile), {std::nullopt, 2u});
    expect_errors(
        result, {{3, 15, "agent.shard_index", "shard index 2 must be less than --shard.count 2"}});
}

// The index is the ordinal ending this machine's host name, or an error that names the host name.
TEST(ConfigShard, IndexFromHostName) {
    const std::string host_name = machine_host_name();
    const auto result = load("[agent]\nshard_count = 10000\nshard_index = \"from-hostname\"\n");
    if (const auto ordinal = ordinal_of_host_name(host_name)) {
        ASSERT_TRUE(result.config) << result.errors.front().to_string();
        EXPECT_EQ(result.config->agent.shard.index, *ordinal);
    } else {
        expect_errors(result,
                      {{3, 15, "agent.shard_index",
                        "the host name \"" + host_name + "\" does not end in \"-<ordinal>\""}});
    }
}

TEST(ConfigShard, KeepOwnShardKeepsTheTargetsThisAgentOwns) {
    std::string text(kThreeShards);
    for (int i = 0; i < 30; ++i) {
        text += "[[targets]]\nname = \"mx" + std::to_string(i) + "\"\nhost = \"mx.example\"\n";
    }
    auto result = load(text);
    ASSERT_TRUE(result.config) << result.errors.front().to_string();
    Config& config = *result.config;
    std::vector<std::string> expected;
    for (const auto& target : config.targets) {
        if (shard_owner(target.name, 3) == 2) expected.push_back(target.name);
    }
    ASSERT_FALSE(expected.empty());
    ASSERT_LT(expected.size(), 30u);
    keep_own_shard(config);
    std::vector<std::string> kept;
    for (const auto& target : config.targets) kept.push_back(target.name);
    EXPECT_EQ(kept, expected);
}

}  // namespace
}  // namespace mailcanary

namespace mailcanary {
namespace {

// Secrets the agent reads: a password file that others can read works, but is said to be exposed.
TEST(ConfigWarnings, SecretFileReadableByOthersIsWarnedAboutWithItsPlace) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path password_file = dir.write("mx1.pw", "S3cret\n");
    const std::string config =
        auth_target_with("username = \"u\"\npassword_file = \"" + password_file.string() + "\"\n");
    const struct {
        fs::perms mode;
        std::string readers;  // "" when no warning is due
    } cases[] = {
        {fs::perms::owner_read | fs::perms::owner_write, ""},
        {fs::perms::owner_read, ""},
        {fs::perms::owner_read | fs::perms::group_read, ""},  // a Kubernetes Secret's 0440
        {fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
             fs::perms::others_read,
         "can be read by every user (mode 0644)"},
        {fs::perms::owner_read | fs::perms::others_read, "can be read by every user (mode 0404)"},
    };
    for (const auto& [mode, readers] : cases) {
        fs::permissions(password_file, mode);
        const ConfigResult result = load(config);
        SCOPED_TRACE(readers);
        ASSERT_TRUE(result.errors.empty()) << all_of(result.errors);
        if (readers.empty()) {
            EXPECT_TRUE(result.warnings.empty()) << all_of(result.warnings);
            continue;
        }
        ASSERT_EQ(result.warnings.size(), 1u) << all_of(result.warnings);
        EXPECT_EQ(result.warnings[0].to_string(),
                  "test.toml:7:17: targets[1].auth.password_file: password file \"" +
                      password_file.string() + "\" " + readers +
                      ": make it readable by its owner only (chmod 600), or its group (640)");
    }
}

TEST(ConfigWarnings, TheAgentsOwnSecretFileIsCheckedWhereverItIs) {
    const TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const fs::path config_file = dir.write("config.toml", std::string(kTarget));
    const fs::path beside = dir.write("mailcanary.secret", "key");
    fs::permissions(beside, fs::perms::owner_read | fs::perms::others_read);
    ConfigResult result = load_config_file(config_file.string());
    ASSERT_EQ(result.warnings.size(), 1u) << all_of(result.warnings);
    EXPECT_EQ(result.warnings[0].key, "agent.secret_file");
    EXPECT_NE(result.warnings[0].message.find("can be read by every user"), std::string::npos);

    fs::permissions(beside, fs::perms::owner_read);
    result = load_config_file(config_file.string());
    EXPECT_TRUE(result.warnings.empty()) << all_of(result.warnings);

    const fs::path elsewhere = dir.write("keys/agent.key", "key");
    fs::permissions(elsewhere, fs::perms::owner_read | fs::perms::others_read);
    dir.write("config.toml", "[agent]\nsecret_file = \"keys/agent.key\"\n" + std::string(kTarget));
    result = load_config_file(config_file.string());
    ASSERT_EQ(result.warnings.size(), 1u) << all_of(result.warnings);
    EXPECT_EQ(result.warnings[0].to_string(),
              config_file.string() + ":2:15: agent.secret_file: secret file \"" +
                  elsewhere.string() +
                  "\" can be read by every user (mode 0404): make it readable by its owner only "
                  "(chmod 600), or its group (640)");
}

// A negative test (expect = "reject") beside targets that log in to the same server: Dovecot's
// auth penalty would make their logins slow, from the agent's own doing.
constexpr std::string_view kNegativeTest = R"([[targets]]
name = "disabled-account"
host = "mail.example.net"
probes = ["auth"]
expect = "reject"
[targets.auth]
username = "disabled@example.net"
password_env = "MAILCANARY_TEST_PASSWORD"
)";

std::string config_with_negative_test(std::string_view others) {
    return std::string(kNegativeTest) + std::string(others);
}

TEST(ConfigWarnings, NegativeTestSharingAServerWithLoginsIsWarnedAbout) {
    const ScopedEnv password(kPasswordVariable, "x");
    const std::string accept_with_login = R"([[targets]]
name = "submission"
host = "MAIL.example.net"
probes = ["accept"]
[targets.auth]
username = "probe@example.net"
password_env = "MAILCANARY_TEST_PASSWORD"
[targets.message]
from = "probe@example.net"
to = ["probe@example.net"]
)";
    const std::string roundtrip_reading_there = R"([[targets]]
name = "relay"
host = "relay.example.net"
probes = ["roundtrip"]
[targets.message]
from = "probe@example.net"
to = ["probe@example.net"]
[targets.roundtrip]
imap_host = "mail.example.net"
username = "probe@example.net"
password_env = "MAILCANARY_TEST_PASSWORD"
)";
    const ConfigResult result =
        load(config_with_negative_test(accept_with_login + roundtrip_reading_there));
    ASSERT_TRUE(result.errors.empty()) << all_of(result.errors);
    ASSERT_EQ(result.warnings.size(), 1u) << all_of(result.warnings);
    const ConfigError& warning = result.warnings[0];
    EXPECT_EQ(warning.line, 5u);
    EXPECT_EQ(warning.column, 10u);
    EXPECT_EQ(warning.key, "targets[1].expect");
    EXPECT_NE(warning.message.find("\"mail.example.net\""), std::string::npos) << warning.message;
    EXPECT_NE(warning.message.find("those of \"submission\", \"relay\":"), std::string::npos)
        << warning.message;
}

TEST(ConfigWarnings, NegativeTestAloneOnItsServerIsNotWarnedAbout) {
    const ScopedEnv password(kPasswordVariable, "x");
    const std::string cases[] = {
        // Another server's logins.
        R"([[targets]]
name = "other"
host = "mx.example.net"
probes = ["auth"]
[targets.auth]
username = "probe@example.net"
password_env = "MAILCANARY_TEST_PASSWORD"
)",
        // The same server, without a login.
        R"([[targets]]
name = "relay"
host = "mail.example.net"
probes = ["connect"]
)",
    };
    for (const std::string& others : cases) {
        const ConfigResult result = load(config_with_negative_test(others));
        ASSERT_TRUE(result.errors.empty()) << all_of(result.errors);
        EXPECT_TRUE(result.warnings.empty()) << all_of(result.warnings);
    }
}

// --- [[modules]] and [probe_endpoint]

TEST(ConfigModules, AModuleIsReadAsATargetWithoutHostOrPort) {
    const ScopedEnv password(kPasswordVariable, std::string(kEnvPassword).c_str());
    const auto result = load(
        "[defaults]\nhelo = \"canary.example.org\"\ntimeout = \"7s\"\n"
        "[[modules]]\nname = \"submission\"\nprobes = [\"connect\", \"auth\"]\n"
        "tls = \"implicit\"\ntimeout = \"3s\"\n"
        "[modules.tls_options]\nserver_name = \"mail.example.org\"\n"
        "[modules.auth]\nusername = \"u\"\npassword_env = \"MAILCANARY_TEST_PASSWORD\"\n"
        "[[modules]]\nname = \"plain\"\n");
    ASSERT_TRUE(result.config) << all_of(result.errors);
    ASSERT_EQ(result.config->modules.size(), 2u);
    const TargetConfig& submission = result.config->modules[0];
    EXPECT_EQ(submission.name, "submission");
    EXPECT_EQ(submission.probes, (std::vector<std::string>{"connect", "auth"}));
    EXPECT_EQ(submission.tls, TlsMode::implicit);
    EXPECT_EQ(submission.timeout, 3s);
    EXPECT_EQ(submission.helo, "canary.example.org") << "from [defaults]";
    EXPECT_EQ(submission.tls_options.server_name, "mail.example.org");
    ASSERT_TRUE(submission.auth);
    EXPECT_EQ(submission.auth->username, "u");
    EXPECT_TRUE(submission.host.empty());
    const TargetConfig& plain = result.config->modules[1];
    EXPECT_EQ(plain.probes, (std::vector<std::string>{"connect"}));
    EXPECT_EQ(plain.tls, TlsMode::starttls);
    EXPECT_EQ(plain.timeout, 7s) << "from [defaults]";
}

TEST(ConfigModules, MistakesAreLocated) {
    expect_errors(load("[[modules]]\nname = \"m\"\nhost = \"mx.example.net\"\n"),
                  {{3, 1, "modules[1].host", "unknown key"}});
    expect_errors(load("[[modules]]\nprobes = [\"connect\"]\n"),
                  {{1, 1, "modules[1].name", "missing"}});
    expect_errors(load("[[modules]]\nname = \"m\"\nprobes = [\"auth\"]\n"),
                  {{3, 10, "modules[1].probes", "needs a [modules.auth] table"}});
    expect_errors(load("[[modules]]\nname = \"m\"\nprobes = [\"imap\"]\n"),
                  {{3, 10, "modules[1].probes", "cannot run from a module"}});
    expect_errors(load("[[modules]]\nname = \"m\"\ntimout = \"3s\"\n"),
                  {{3, 1, "modules[1].timout", "did you mean \"timeout\""}});
    expect_errors(
        load("[[modules]]\nname = \"m\"\n[[modules]]\nname = \"m\"\n"),
        {{4, 8, "modules[2].name", "duplicate module name \"m\" (first defined at line 2)"}});
    expect_errors(load("modules = 3\n"), {{1, 11, "modules", "an array of tables ([[modules]])"}});
}

TEST(ConfigProbeEndpoint, AllowsTheConfiguredTargetsHostsByDefault) {
    const auto result = load(std::string(kTarget) +
                             "[[targets]]\nname = \"mx2\"\nhost = "
                             "\"mx1.example.net\"\nport = 587\n"
                             "[[targets]]\nname = \"mx3\"\nhost = "
                             "\"192.0.2.25\"\n");
    ASSERT_TRUE(result.config) << all_of(result.errors);
    EXPECT_EQ(result.config->probe_endpoint.allow,
              (std::vector<std::string>{"mx1.example.net", "192.0.2.25"}));
    EXPECT_EQ(result.config->probe_endpoint.min_interval_per_host, 5s);
}

TEST(ConfigProbeEndpoint, ReadsTheAllowListAndTheInterval) {
    const auto result = load(std::string(kTarget) +
                             "[probe_endpoint]\nallow = [\"*.example.com\", \"10.0.0.0/8\"]\n"
                             "min_interval_per_host = \"30s\"\n");
    ASSERT_TRUE(result.config) << all_of(result.errors);
    EXPECT_EQ(result.config->probe_endpoint.allow,
              (std::vector<std::string>{"*.example.com", "10.0.0.0/8"}));
    EXPECT_EQ(result.config->probe_endpoint.min_interval_per_host, 30s);
    const auto none = load(std::string(kTarget) + "[probe_endpoint]\nallow = []\n");
    ASSERT_TRUE(none.config) << all_of(none.errors);
    EXPECT_TRUE(none.config->probe_endpoint.allow.empty()) << "an empty list allows nothing";
}

TEST(ConfigProbeEndpoint, MistakesAreLocated) {
    expect_errors(load("[probe_endpoint]\nallow = [\"mx.*.example.com\"]\n"),
                  {{2, 10, "probe_endpoint.allow[1]", "leading \"*.\""}});
    expect_errors(load("[probe_endpoint]\nallow = [\"10.0.0.0/40\"]\n"),
                  {{2, 10, "probe_endpoint.allow[1]", "is not a CIDR"}});
    expect_errors(load("[probe_endpoint]\nmin_interval = \"5s\"\n"),
                  {{2, 1, "probe_endpoint.min_interval", "unknown key"}});
    expect_errors(load("[probe_endpoint]\nmin_interval_per_host = \"soon\"\n"),
                  {{2, 25, "probe_endpoint.min_interval_per_host", ""}});
}

// `ip`: both is two instances of the target (v4 first), each pinned to its family and labelled;
// v4 or v6 one labelled instance; auto (the default) one instance without a label, as before.
TEST(ConfigIp, ExpandsTargetsIntoInstancesWithTheirLabels) {
    const auto result = load(
        "[[targets]]\nname = \"dual\"\nhost = \"mail.example.net\"\nip = \"both\"\n"
        "[[targets]]\nname = \"six\"\nhost = \"mail.example.net\"\nip = \"v6\"\n"
        "[[targets]]\nname = \"plain\"\nhost = \"mail.example.net\"\n"
        "[[targets]]\nname = \"said\"\nhost = \"mail.example.net\"\nip = \"auto\"\n");
    ASSERT_TRUE(result.config) << all_of(result.errors);
    const auto& targets = result.config->targets;
    ASSERT_EQ(targets.size(), 5u);
    const InstanceLabels v4{{"ip_family", "v4"}};
    const InstanceLabels v6{{"ip_family", "v6"}};
    EXPECT_EQ(targets[0].name, "dual");
    EXPECT_EQ(targets[0].ip_family, IpFamily::v4);
    EXPECT_EQ(targets[0].instance_labels, v4);
    EXPECT_EQ(targets[0].instance_key(), R"(dual{ip_family="v4"})");
    EXPECT_EQ(targets[1].name, "dual");
    EXPECT_EQ(targets[1].ip_family, IpFamily::v6);
    EXPECT_EQ(targets[1].instance_labels, v6);
    // The same target otherwise: one host, one schedule, one budget.
    EXPECT_EQ(targets[1].host, targets[0].host);
    EXPECT_EQ(targets[1].interval, targets[0].interval);
    EXPECT_EQ(targets[2].name, "six");
    EXPECT_EQ(targets[2].ip_family, IpFamily::v6);
    EXPECT_EQ(targets[2].instance_labels, v6);
    EXPECT_EQ(count_targets(targets), 4u);  // dual counts once
    for (const auto& unpinned : {targets[3], targets[4]}) {
        EXPECT_EQ(unpinned.ip_family, IpFamily::any);
        EXPECT_TRUE(unpinned.instance_labels.empty());
        EXPECT_EQ(unpinned.instance_key(), unpinned.name);
    }
}

// A reload that changes `ip` changes the instances: the config compares unequal, and the keys
// of the instances (what the scheduler keeps jobs and results by) follow.
TEST(ConfigIp, ChangingIpChangesTheInstances) {
    const auto load_with = [](std::string_view ip) {
        return load("[[targets]]\nname = \"mx\"\nhost = \"mx.example.net\"\nip = \"" +
                    std::string(ip) + "\"\n");
    };
    const auto before = load_with("v4");
    const auto after = load_with("both");
    ASSERT_TRUE(before.config && after.config);
    ASSERT_EQ(before.config->targets.size(), 1u);
    ASSERT_EQ(after.config->targets.size(), 2u);
    // The v4 instance keeps its key, but not its settings (ip changed): it restarts.
    EXPECT_EQ(before.config->targets[0].instance_key(), after.config->targets[0].instance_key());
    EXPECT_NE(before.config->targets[0], after.config->targets[0]);
}

// `mx` instead of `host`: the target stays one until its MX hosts are known (at run time), and
// takes `ip` along for them.
TEST(ConfigMx, ReadsTheDomainAndKeepsTheTargetWhole) {
    const auto result = load(
        "[[targets]]\nname = \"domain\"\nmx = \"example.net\"\nip = \"both\"\n"
        "probes = [\"connect\", \"auth\"]\n[targets.auth]\nusername = \"u\"\npassword_env = "
        "\"HOME\"\n");
    ASSERT_TRUE(result.config) << all_of(result.errors);
    ASSERT_EQ(result.config->targets.size(), 1u);
    const TargetConfig& target = result.config->targets[0];
    EXPECT_EQ(target.mx, "example.net");
    EXPECT_EQ(target.host, "");
    EXPECT_EQ(target.ip, IpChoice::both);
    EXPECT_TRUE(target.instance_labels.empty());
}

TEST(ConfigMx, ErrorsSayWhere) {
    expect_errors(
        load("[[targets]]\nname = \"d\"\nhost = \"mail.example.net\"\nmx = \"example.net\"\n"),
        {{4, 6, "targets[1].mx", "exclude each other"}});
    expect_errors(load("[[targets]]\nname = \"d\"\nmx = \"\"\n"), {{3, 6, "targets[1].mx", ""}});
    expect_errors(load("[[targets]]\nname = \"d\"\nmx = \"bad host!\"\n"),
                  {{3, 6, "targets[1].mx", ""}});
    expect_errors(load("[[targets]]\nname = \"d\"\n"), {{1, 1, "targets[1].host", "missing"}});
    expect_errors(load("[[targets]]\nname = \"d\"\nmx = \"example.net\"\nprobes = [\"imap\"]\n"
                       "[targets.imap]\nhost = \"imap.example.net\"\nusername = "
                       "\"u\"\npassword_env = \"HOME\"\n"),
                  {{3, 6, "targets[1].mx", "imap probe does not go with `mx`"}});
    expect_errors(load("[[modules]]\nname = \"m\"\nmx = \"example.net\"\n"),
                  {{3, 1, "modules[1].mx", "unknown key"}});
}

}  // namespace
}  // namespace mailcanary
