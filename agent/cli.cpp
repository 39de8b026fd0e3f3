#include "agent/cli.hpp"

#include <string_view>

namespace mailcanary {

std::string usage() {
    return R"(Usage: mailcanary [flags]
       mailcanary check HOST[:PORT] [flags]   (try a server once by hand: check --help)

Synthetic SMTP monitoring: probes mail servers on a schedule and serves Prometheus metrics.

Flags:
  --config.file=PATH           configuration file (default: config/mailcanary.toml)
  --config.check               validate the configuration, print every error, and exit
  --web.listen-address=ADDR    address to serve HTTP on, "host:port", "[v6]:port" or ":port";
                               repeat for several; replaces [agent] listen_addresses
  --web.config.file=PATH       TLS and basic authentication for every endpoint, in the
                               exporter-toolkit format (docs/web-config.md)
  --log.level=LEVEL            debug, info, warn or error (default: info)
  --log.format=FORMAT          logfmt or json (default: logfmt)
  --shard.index=I              probe only this agent's share of the targets: agent I (from 0) of
                               --shard.count; "from-hostname" takes I from the host name's
                               trailing "-<ordinal>" (a StatefulSet pod); replaces [agent] shard_index
  --shard.count=N              how many agents share the targets (default: 1, all of them);
                               replaces [agent] shard_count
  --probe=TARGET               run TARGET's probes once, print each transcript, and exit
                               (0 when every probe succeeded, 1 otherwise)
  --version                    print the version and exit
  -h, --help                   print this help and exit
)";
}

CliResult parse_cli(std::span<const char* const> args) {
    CliOptions options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::string_view name = arg;
        std::optional<std::string_view> value;
        if (const auto equals = arg.find('='); arg.starts_with("--") && equals != arg.npos) {
            name = arg.substr(0, equals);
            value = arg.substr(equals + 1);
        }
        // Flags that take a value accept it as the next argument too.
        const auto take_value = [&]() -> std::optional<std::string> {
            if (value) return std::string(*value);
            if (i + 1 < args.size()) return std::string(args[++i]);
            return std::nullopt;
        };
        const auto missing = [&] {
            return CliResult{{}, "flag " + std::string(name) + " needs a value"};
        };
        const auto no_value_allowed = [&] {
            return CliResult{{}, "flag " + std::string(name) + " takes no value"};
        };

        if (name == "--config.file") {
            auto path = take_value();
            if (!path || path->empty()) return missing();
            options.config_file = *path;
        } else if (name == "--web.listen-address") {
            auto address = take_value();
            if (!address || address->empty()) return missing();
            options.listen_addresses.push_back(*address);
        } else if (name == "--web.config.file") {
            auto path = take_value();
            if (!path || path->empty()) return missing();
            options.web_config_file = *path;
        } else if (name == "--log.level") {
            auto text = take_value();
            if (!text) return missing();
            auto level = log::parse_level(*text);
            if (!level)
                return {{},
                        "--log.level: \"" + *text + "\" is not one of debug, info, warn, error"};
            options.log_level = *level;
        } else if (name == "--log.format") {
            auto text = take_value();
            if (!text) return missing();
            auto format = log::parse_format(*text);
            if (!format) return {{}, "--log.format: \"" + *text + "\" is not one of logfmt, json"};
            options.log_format = *format;
        } else if (name == "--shard.index") {
            auto text = take_value();
            if (!text) return missing();
            std::string problem;
            options.shard.index = parse_shard_index(*text, problem);
            if (!options.shard.index) return {{}, "--shard.index: \"" + *text + "\" " + problem};
        } else if (name == "--shard.count") {
            auto text = take_value();
            if (!text) return missing();
            options.shard.count = parse_shard_count(*text);
            if (!options.shard.count) {
                return {{},
                        "--shard.count: \"" + *text + "\" must be a number from 1 to " +
                            std::to_string(kMaxShardCount)};
            }
        } else if (name == "--probe") {
            auto target = take_value();
            if (!target || target->empty()) return missing();
            options.probe_target = *target;
        } else if (name == "--config.check") {
            if (value) return no_value_allowed();
            options.config_check = true;
        } else if (name == "--version") {
            if (value) return no_value_allowed();
            options.show_version = true;
        } else if (name == "--help" || name == "-h") {
            options.show_help = true;
        } else {
            return {{}, "unknown flag \"" + std::string(arg) + "\" (see --help)"};
        }
    }
    return {options, {}};
}

}  // namespace mailcanary
