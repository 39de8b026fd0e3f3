#include "agent/probe_once.hpp"

#include <prometheus/registry.h>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <stdexcept>

#include "agent/agent.hpp"
#include "agent/mx_targets.hpp"
#include "agent/status_page.hpp"
#include "common/blocking_work.hpp"
#include "probes/probe_kind.hpp"
#include "probes/registry.hpp"

namespace mailcanary {

namespace asio = boost::asio;

std::vector<OneRun> run_probes_once(asio::io_context& io,
                                    std::shared_ptr<CompiledTarget> compiled) {
    if (compiled.use_count() != 1) throw std::logic_error("run_probes_once: the target is shared");
    // One run has nowhere to keep series across runs: its kinds' own series go nowhere.
    prometheus::Registry unexported;
    ProbeResources resources(io.get_executor(), unexported, {});
    const auto attached = attach_resources({std::move(compiled)}, resources);
    const CompiledTarget& target = *attached.front();
    std::vector<OneRun> runs;
    runs.reserve(target.config.probes.size());
    for (const auto& probe_name : target.config.probes) {
        const auto started = std::chrono::steady_clock::now();
        OneRun& run = runs.emplace_back(
            OneRun{find_probe(probe_name), {}, {}, Transcript(started), started, {}});
        StopSignal stop;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const std::function<void()> no_cap;  // one run: nothing to count
                run.outcome =
                    co_await run.probe->run(ProbeRun{target, started + target.config.timeout,
                                                     run.metrics, run.transcript, stop, no_cap});
                // Shared resources (mailbox sessions) would go on forever: this was the last run.
                if (&probe_name == &target.config.probes.back()) resources.stop();
            },
            asio::detached);
        io.restart();
        io.run();
        run.elapsed = std::chrono::steady_clock::now() - started;
    }
    return runs;
}

int probe_once(asio::io_context& io, const Config& config,
               std::vector<std::shared_ptr<CompiledTarget>> targets,
               const std::string& target_name) {
    std::erase_if(targets, [&](const auto& target) { return target->config.name != target_name; });
    if (targets.empty()) {
        std::fprintf(stderr, "mailcanary: no target named \"%s\" in %s\n", target_name.c_str(),
                     config.source_path.c_str());
        return 2;
    }
    if (!targets.front()->config.mx.empty()) {
        // An `mx` target's instances are its MX hosts now.
        const CompiledTarget& compiled = *targets.front();
        MxLookup lookup;
        DnsCancel cancel;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                lookup = co_await compiled.smtp.resolver->mx(
                    compiled.config.mx, std::chrono::steady_clock::now() + compiled.config.timeout,
                    cancel);
            },
            asio::detached);
        io.restart();
        io.run();
        auto made = mx_instances(compiled.config, lookup, std::nullopt);
        if (made.failure) {
            const auto outcome = Outcome::failed(made.failure->reason, made.failure->detail);
            std::printf("%s: %s\n", target_name.c_str(), outcome_text(outcome).c_str());
            return 1;
        }
        targets = compile_instances(compiled, std::move(made));
    }
    bool all_succeeded = true;
    // Every instance of the target: both families of `ip = "both"` (and every MX host of `mx`),
    // one after the other.
    for (auto& instance : targets) {
        const std::string key = instance->config.instance_key();
        for (const OneRun& run : run_probes_once(io, std::move(instance))) {
            all_succeeded = all_succeeded && run.outcome.success();
            std::printf("%s/%s: %s in %s\n%s", key.c_str(), std::string(run.probe->name()).c_str(),
                        outcome_text(run.outcome).c_str(), format_milliseconds(run.elapsed).c_str(),
                        run.transcript.to_text().c_str());
            for (const Phase phase : run.probe->phases()) {
                if (const auto& elapsed_phase =
                        run.metrics.phase_durations[static_cast<std::size_t>(phase)]) {
                    std::printf("  phase %-13s %s\n", std::string(to_string(phase)).c_str(),
                                format_milliseconds(*elapsed_phase).c_str());
                }
            }
        }
    }
    stop_blocking_work();  // after the last instance, before `io` goes
    return all_succeeded ? 0 : 1;
}

}  // namespace mailcanary
