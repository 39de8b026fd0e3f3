#include "agent/probe_once.hpp"

#include <prometheus/registry.h>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "agent/agent.hpp"
#include "agent/status_page.hpp"
#include "common/blocking_work.hpp"
#include "probes/probe_kind.hpp"
#include "probes/registry.hpp"

namespace mailcanary {

namespace asio = boost::asio;

int probe_once(const Config& config, std::vector<std::shared_ptr<CompiledTarget>> targets,
               const std::string& target_name) {
    std::erase_if(targets, [&](const auto& target) { return target->config.name != target_name; });
    if (targets.empty()) {
        std::fprintf(stderr, "mailcanary: no target named \"%s\" in %s\n", target_name.c_str(),
                     config.source_path.c_str());
        return 2;
    }
    asio::io_context io;
    // One run has nowhere to keep series across runs: its kinds' own series go nowhere.
    prometheus::Registry unexported;
    ProbeResources resources(io.get_executor(), unexported, {});
    const auto attached = attach_resources(std::move(targets), resources);
    const CompiledTarget& target = *attached.front();
    bool all_succeeded = true;
    for (const auto& probe_name : target.config.probes) {
        const ProbeKind* probe = find_probe(probe_name);
        RunMetrics metrics;
        Transcript transcript;
        StopSignal stop;
        Outcome outcome;
        const auto started = std::chrono::steady_clock::now();
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const std::function<void()> no_cap;  // one run: nothing to count
                outcome = co_await probe->run(ProbeRun{target, started + target.config.timeout,
                                                       metrics, transcript, stop, no_cap});
                // Shared resources (mailbox sessions) would go on forever: this was the last run.
                if (&probe_name == &target.config.probes.back()) resources.stop();
            },
            asio::detached);
        io.restart();
        io.run();
        const auto elapsed = std::chrono::steady_clock::now() - started;
        all_succeeded = all_succeeded && outcome.success();
        std::printf("%s/%s: %s in %s\n%s", target.config.name.c_str(), probe_name.c_str(),
                    outcome_text(outcome).c_str(), format_milliseconds(elapsed).c_str(),
                    transcript.to_text().c_str());
        for (const Phase phase : probe->phases()) {
            if (const auto& elapsed_phase =
                    metrics.phase_durations[static_cast<std::size_t>(phase)]) {
                std::printf("  phase %-13s %s\n", std::string(to_string(phase)).c_str(),
                            format_milliseconds(*elapsed_phase).c_str());
            }
        }
    }
    stop_blocking_work();  // before `io` goes: a worker may still post to it
    return all_succeeded ? 0 : 1;
}

}  // namespace mailcanary
