// Wires the agent together: configuration (and reloads), the scheduler, the metrics and the HTTP
// endpoints, on one io_context.
#pragma once

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/cli.hpp"
#include "agent/config.hpp"
#include "agent/http_server.hpp"
#include "agent/metrics.hpp"
#include "agent/mx_targets.hpp"
#include "agent/probe_endpoint.hpp"
#include "agent/results.hpp"
#include "agent/scheduler.hpp"
#include "agent/web_config.hpp"
#include "probes/probe_kind.hpp"
#include "protocols/dns_resolver.hpp"

namespace mailcanary {

// Whether compiling may create the installation's token secret (not for --config.check, which
// must leave no trace).
enum class SecretPolicy { load_or_create, load_if_present };

// What a load compiled: the targets, and the modules /probe runs.
struct CompiledLoad {
    std::vector<std::shared_ptr<CompiledTarget>> targets;
    std::vector<std::shared_ptr<CompiledTarget>> modules;
    std::shared_ptr<DnsResolver> resolver;  // the one their endpoints use
};

// The resolver for [agent] dns_servers (the system's servers when there are none), on
// `executor`'s loop; null, with an error under agent.dns_servers, when it cannot be set up.
std::shared_ptr<DnsResolver> make_resolver(const boost::asio::any_io_executor& executor,
                                           const Config& config, std::vector<ConfigError>& errors);

// Builds what probes need from each target and module (TLS contexts, credentials, the token
// secret, `resolver` in their endpoints); problems are config errors. Without a resolver only
// IP literals can be connected to.
CompiledLoad compile_load(const Config& config, std::vector<ConfigError>& errors,
                          SecretPolicy secret_policy = SecretPolicy::load_or_create,
                          std::shared_ptr<DnsResolver> resolver = nullptr);

// Builds what probes need from each target (TLS contexts, credentials, the token secret);
// problems are config errors.
std::vector<std::shared_ptr<CompiledTarget>> compile_targets(
    const Config& config, std::vector<ConfigError>& errors,
    SecretPolicy secret_policy = SecretPolicy::load_or_create,
    std::shared_ptr<DnsResolver> resolver = nullptr);

// At start and at each reload: what works but should be fixed.
void log_config_warnings(const std::vector<ConfigError>& warnings);

// Gives the targets of a compiled load the shared resources their probes use (the round trip's
// mailbox sessions), and lets go of those no target uses any more.
std::vector<std::shared_ptr<const CompiledTarget>> attach_resources(
    std::vector<std::shared_ptr<CompiledTarget>> targets, ProbeResources& resources);

class Agent {
  public:
    // `config` has been loaded and compiled successfully; `web_config` too, when the options
    // name one.
    Agent(boost::asio::io_context& io, CliOptions options, Config config, CompiledLoad compiled,
          const std::optional<WebConfig>& web_config = std::nullopt);
    ~Agent();

    // Serves and probes until SIGTERM or SIGINT; returns the process exit code.
    int run();

    // Loads the configuration file again; on any error the running configuration stays.
    bool reload(std::string& report);
    http::Response handle(const http::Request& request);

  private:
    struct MxWatch;

    void shutdown();
    // Schedules `targets` (a load's): the `mx` ones through a watch of their MX set each, which
    // takes over what the watch of the same target in the previous load knew.
    void apply_targets(std::vector<std::shared_ptr<CompiledTarget>> targets);
    // Schedules the fixed targets and the instances the watches hold now.
    void reschedule();
    boost::asio::awaitable<void> watch_mx(std::shared_ptr<MxWatch> watch);
    // The configuration in force with the `mx` targets' instances in their place (status API).
    Config scheduled_config() const;
    // Takes `lookup` into what the watch knows and makes its instances; true when they changed.
    bool take_mx_lookup(MxWatch& watch, MxLookup lookup);
    // Makes the watch's instances from what it knows now; true when they changed.
    bool make_mx_instances(MxWatch& watch);
    void protect_endpoints(const std::optional<WebConfig>& web_config);
    // The cap on runs in flight: the configured one, else the default for the descriptor limit.
    // A configured one that the limit cannot carry is logged.
    unsigned max_in_flight(const AgentConfig& agent) const;

    boost::asio::io_context& io_;
    CliOptions options_;
    Config config_;
    std::uint64_t descriptor_limit_;
    unsigned default_max_in_flight_;
    Metrics metrics_;
    ProbeResources resources_;  // before the scheduler: runs in flight use them
    // The resolver of the configuration in force; a reload with other dns_servers makes a new
    // one, which the runs of the old configuration's targets do not use.
    std::shared_ptr<DnsResolver> resolver_;
    ResultStore results_;
    MxSeries mx_series_;
    // The targets of the configuration in force without the `mx` ones, whose instances their
    // watches hold (by target name).
    std::vector<std::shared_ptr<CompiledTarget>> fixed_targets_;
    std::map<std::string, std::shared_ptr<MxWatch>, std::less<>> mx_watches_;
    Scheduler scheduler_;
    ProbeEndpoint probe_endpoint_;  // runs through the scheduler
    // Renders /metrics off the loop (a large one takes long enough to make runs late); after
    // metrics_, so that it is joined before the metrics it reads are destroyed.
    boost::asio::thread_pool render_pool_{1};
    http::Server http_;
    bool serves_tls_ = false;
    bool stopping_ = false;
};

}  // namespace mailcanary
