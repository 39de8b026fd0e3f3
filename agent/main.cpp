#include <utility>

#include <malloc.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "agent/agent.hpp"
#include "agent/check_command.hpp"
#include "agent/cli.hpp"
#include "agent/config.hpp"
#include "agent/descriptor_limit.hpp"
#include "agent/probe_once.hpp"
#include "agent/version.hpp"
#include "agent/web_config.hpp"
#include "common/blocking_work.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
    using namespace mailcanary;
    const std::span<const char* const> args(argv + std::min(argc, 1),
                                            static_cast<std::size_t>(std::max(argc - 1, 0)));
    // `mailcanary check HOST[:PORT] ...`: a command of its own, with its own flags.
    if (!args.empty() && std::string_view(args.front()) == "check")
        return check_command(args.subspan(1));
    const auto parsed = parse_cli(args);
    if (!parsed.options) {
        std::fprintf(stderr, "mailcanary: %s\n", parsed.error.c_str());
        return 2;
    }
    const CliOptions& options = *parsed.options;
    if (options.show_help) {
        std::fputs(usage().c_str(), stdout);
        return 0;
    }
    if (options.show_version) {
        std::printf("mailcanary %s (revision %s)\n", std::string(version()).c_str(),
                    std::string(revision()).c_str());
        return 0;
    }
    log::configure(options.log_level, options.log_format);
    // A /metrics body can be a hundred megabytes. As a mapping of its own it is given back to the
    // system once sent; glibc would otherwise raise its mmap threshold after the first such
    // free and keep later bodies in the heap, holding the largest scrape's size for good.
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);

    auto loaded = load_config_file(options.config_file, options.shard);
    // --config.check and --probe see every target; a running agent only its shard's.
    if (loaded.config && !options.config_check && !options.probe_target)
        keep_own_shard(*loaded.config);
    // The resolver's channels live on this loop, which outlives every target using them.
    boost::asio::io_context io(1);
    CompiledLoad compiled;
    if (loaded.config) {
        compiled = compile_load(
            *loaded.config, loaded.errors,
            options.config_check ? SecretPolicy::load_if_present : SecretPolicy::load_or_create,
            make_resolver(io.get_executor(), *loaded.config, loaded.errors));
    }
    // The endpoints' protection: an agent whose file has errors does not start, rather than
    // serve unprotected.
    auto web_config = load_web_config(options.web_config_file, loaded.errors);
    if (!loaded.errors.empty()) {
        for (const auto& error : loaded.errors)
            std::fprintf(stderr, "%s\n", error.to_string().c_str());
        std::fprintf(stderr, "mailcanary: %zu error%s in the configuration\n", loaded.errors.size(),
                     loaded.errors.size() == 1 ? "" : "s");
        return 1;
    }
    if (options.config_check) {
        for (const auto& warning : loaded.warnings)
            std::fprintf(stderr, "warning: %s\n", warning.to_string().c_str());
        const auto& all = loaded.config->targets;
        const Shard& shard = loaded.config->agent.shard;
        std::string shard_part;
        if (shard.count > 1) {
            std::vector<TargetConfig> own = all;
            std::erase_if(own,
                          [&](const TargetConfig& target) { return !owns(shard, target.name); });
            shard_part = ", " + std::to_string(count_targets(own)) + " in shard " +
                         std::to_string(shard.index) + " of " + std::to_string(shard.count);
        }
        // Targets, not instances: an `ip = "both"` target counts once.
        const std::size_t targets = count_targets(all);
        const std::size_t warnings_count = loaded.warnings.size();
        std::printf("%s: configuration is valid (%zu target%s%s, %zu warning%s)\n",
                    options.config_file.c_str(), targets, targets == 1 ? "" : "s",
                    shard_part.c_str(), warnings_count, warnings_count == 1 ? "" : "s");
        if (web_config)
            std::printf("%s: web configuration is valid\n", options.web_config_file.c_str());
        return 0;
    }
    log_config_warnings(loaded.warnings);
    if (options.probe_target)
        return probe_once(io, *loaded.config, std::move(compiled.targets), *options.probe_target);

    // Every run in flight holds a socket, and the default cap on runs follows this limit.
    std::string problem;
    raise_descriptor_limit(problem);
    if (!problem.empty()) log::warn("cannot raise the descriptor limit", {{"error", problem}});

    Agent agent(io, options, std::move(*loaded.config), std::move(compiled), web_config);
    const int exit_code = agent.run();
    stop_blocking_work();  // workers post results to `io`: stop them while `io` still exists
    return exit_code;
}
