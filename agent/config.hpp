// The agent's configuration: parsed and validated once, at load, into typed structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/shard.hpp"
#include "common/config_error.hpp"
#include "common/duration.hpp"
#include "probes/target_config.hpp"
#include "protocols/dns_server.hpp"

namespace mailcanary {

// A target's timeout when neither it nor [defaults] sets one.
inline constexpr Duration kDefaultTimeout = std::chrono::seconds(10);

// The most `max_concurrent_probes` may be.
inline constexpr unsigned kMaxConcurrentProbesLimit = 100'000;

struct MetricsConfig {
    std::vector<double> duration_buckets;  // seconds, strictly increasing
    bool phase_histograms = true;          // false: a last-run gauge per phase instead

    bool operator==(const MetricsConfig&) const = default;
};

struct AgentConfig {
    std::vector<std::string> listen_addresses;  // "host:port", "[v6]:port" or ":port"
    // Unset: derived from the descriptor limit (default_max_concurrent_probes).
    std::optional<unsigned> max_concurrent_probes;
    MetricsConfig metrics;
    // Absolute path of the key that signs each probe message's token; by default
    // "mailcanary.secret" beside the config file. Created by the agent if it does not exist.
    std::string secret_file;
    // This agent's share of the targets ([agent] shard_index and shard_count, or their flags).
    Shard shard;
    // [agent] dns_servers, asked in order; empty: the system's resolv.conf.
    std::vector<DnsServer> dns_servers;
};

// [probe_endpoint]: what GET /probe may probe, and how often.
struct ProbeEndpointConfig {
    // Host names, domain wildcards ("*.example.com"), addresses and CIDRs (agent/probe_allow.hpp);
    // by default the hosts of every configured target, whichever shard probes them.
    std::vector<std::string> allow;
    // The least time between two runs of one module on one server (host and port).
    Duration min_interval_per_host = std::chrono::seconds(5);

    bool operator==(const ProbeEndpointConfig&) const = default;
};

struct Config {
    std::string source_path;  // the file it was loaded from
    AgentConfig agent;
    std::vector<TargetConfig> targets;
    // [[modules]], for /probe: each is read as a target without a host or port (name, probes,
    // tls, helo, timeout, tls_options, auth, message); a request names the host and port.
    std::vector<TargetConfig> modules;
    ProbeEndpointConfig probe_endpoint;
};

struct ConfigResult {
    std::optional<Config> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
    std::vector<ConfigError> warnings;  // what works but should be fixed; never stops a load
};

// Parses and validates; every problem found is reported, not only the first. `shard_flags`
// replace the file's shard settings.
ConfigResult load_config_file(const std::string& path, const ShardFlags& shard_flags = {});
ConfigResult load_config_string(std::string_view text, const std::string& path_for_errors,
                                const ShardFlags& shard_flags = {});

// This machine's host name, the default `helo`; "localhost" when it has none.
std::string machine_host_name();

// Keeps only the targets of this agent's shard (config.agent.shard).
void keep_own_shard(Config& config);

}  // namespace mailcanary
