// `mailcanary check HOST[:PORT] [flags]`: one try of a mail server by hand, with the agent's own
// probe code and no configuration file. The flags become the same typed target the loader
// builds from a [[targets]] table; the runs are printed as a waterfall (waterfall_render.hpp).
#pragma once

#include <optional>
#include <span>
#include <string>

#include "probes/target_config.hpp"

namespace mailcanary {

enum class CheckOutput { text, json };

struct CheckRequest {
    TargetConfig target;   // named "HOST:PORT"
    bool verbose = false;  // -v: the (redacted) transcript too
    CheckOutput output = CheckOutput::text;
};

struct CheckParse {
    std::optional<CheckRequest> request;  // empty: a usage error, or --help
    std::string error;                    // set for a usage error
    bool show_help = false;
};

// `args` are those after "check". Flags take "--flag=value" or "--flag value".
CheckParse parse_check_args(std::span<const char* const> args);
std::string check_usage();

// The whole command. Exit status: 0 every probe succeeded, 1 one failed, 2 bad usage.
int check_command(std::span<const char* const> args);

}  // namespace mailcanary
