// Command-line flags.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/shard.hpp"
#include "common/log.hpp"

namespace mailcanary {

struct CliOptions {
    std::string config_file = "config/mailcanary.toml";
    bool config_check = false;
    std::vector<std::string> listen_addresses;  // when given, replaces [agent] listen_addresses
    std::string web_config_file;  // TLS and authentication of the endpoints; empty: none
    log::Level log_level = log::Level::info;
    log::Format log_format = log::Format::logfmt;
    std::optional<std::string> probe_target;  // one-shot: run this target's probes once and exit
    ShardFlags shard;                         // applied at start and at every reload
    bool show_version = false;
    bool show_help = false;
};

struct CliResult {
    std::optional<CliOptions> options;
    std::string error;  // set when options is empty
};

// `args` excludes the program name. Flags take "--flag=value" or "--flag value".
CliResult parse_cli(std::span<const char* const> args);
std::string usage();

}  // namespace mailcanary
