// A probe kind: everything one kind of probe brings to the agent, so that the loader, the
// scheduler, the metrics and the one-shot command handle every kind alike. Adding a kind is a
// class implementing this (its own file or folder) and one line in registry.cpp.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "common/toml_reader.hpp"
#include "probes/probe.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"

namespace prometheus {
class Registry;
}

namespace mailcanary {

class DnsResolver;
class SettingsReader;
class TlsContexts;

// Something several targets of a kind share for the agent's life, across reloads (the round
// trip's mailbox sessions, a kind's own metric families).
class SharedResource {
  public:
    virtual ~SharedResource() = default;
    // A new configuration is in force: let go of what it no longer uses.
    virtual void commit() {}
    // The agent is stopping.
    virtual void stop() {}
};

// The agent's shared resources, made by the kinds when first needed. Used on the agent's loop.
class ProbeResources {
  public:
    ProbeResources(boost::asio::any_io_executor executor, prometheus::Registry& registry,
                   std::vector<double> duration_buckets)
        : executor_(std::move(executor)),
          registry_(registry),
          duration_buckets_(std::move(duration_buckets)) {}

    const boost::asio::any_io_executor& executor() const { return executor_; }
    // Where a kind registers its own metric families.
    prometheus::Registry& registry() { return registry_; }
    // [metrics] duration_buckets, for a kind's own duration histograms.
    const std::vector<double>& duration_buckets() const { return duration_buckets_; }

    template <typename Resource, typename Make>
    Resource& get(Make make) {
        auto& slot = resources_[std::type_index(typeid(Resource))];
        if (!slot) slot = make();
        return static_cast<Resource&>(*slot);
    }

    void commit() {
        for (auto& [type, resource] : resources_) resource->commit();
    }
    void stop() {
        for (auto& [type, resource] : resources_) resource->stop();
    }

  private:
    boost::asio::any_io_executor executor_;
    prometheus::Registry& registry_;
    std::vector<double> duration_buckets_;
    std::map<std::type_index, std::unique_ptr<SharedResource>> resources_;
};

// What a load gives every kind's compile step.
struct LoadContext {
    TlsContexts& tls;
    const std::string& file;  // for errors
    std::vector<ConfigError>& errors;
    std::shared_ptr<DnsResolver> resolver;  // the agent's; null: IP literals only

    // Gives `endpoint` the resolver and this load's TLS context for its options (none with
    // tls = "none"); false, with the error under `key`.tls_options.ca_file, when the trust store
    // cannot be read.
    bool complete_endpoint(Endpoint& endpoint, const std::string& key);
    // The login's credential source; empty, with the error under `key`, when its secret (a
    // password from the environment or a file) cannot be read.
    std::optional<CredentialSource> load_login(const AuthConfig& auth, const std::string& key);
};

// A kind's own series of one target, alive while the (target, probe) pair is scheduled.
class ProbeExtraSeries {
  public:
    virtual ~ProbeExtraSeries() = default;
    virtual void record(const Outcome& outcome, const RunMetrics& run) = 0;
};

// Why a due run is not started: its server throttles the agent and the backoff it asked for
// lasts (backoff), or the run would spend more than the budget of connections a minute to the
// server (connection_budget) or of messages an hour for the account (message_budget).
enum class HeldBack { backoff, connection_budget, message_budget };

// The labels of a kind's own series of one instance (prometheus::Labels): its target and its
// instance labels.
inline std::map<std::string, std::string> instance_series_labels(const TargetConfig& instance) {
    std::map<std::string, std::string> labels{{"target", instance.name}};
    for (const auto& [name, value] : instance.instance_labels) labels.emplace(name, value);
    return labels;
}

class ProbeKind {
  public:
    virtual ~ProbeKind() = default;

    // As in the configuration's `probes` and the `probe` label.
    virtual std::string_view name() const = 0;
    // The phases its runs go through and the reasons they can fail for (docs/metrics.md lists
    // them; a test holds the two together).
    virtual std::span<const Phase> phases() const = 0;
    virtual std::span<const FailureReason> reasons() const = 0;

    // Tables of the target it cannot run without, e.g. "message" (its own included).
    virtual std::span<const std::string_view> required_tables() const { return {}; }
    // Whether it reads a table of its own, [targets.<name>].
    virtual bool has_own_table() const { return false; }
    // Reads [targets.<name>], reporting problems through `reader`; called whenever the table is
    // there, so a table is checked even while its probe is not listed.
    virtual std::shared_ptr<const ProbeOptions> read_options(SettingsReader& /*reader*/,
                                                             const toml::table& /*table*/,
                                                             const std::string& /*path*/,
                                                             const TargetConfig& /*target*/) const {
        return nullptr;
    }
    // Checks that span the target's settings, once they are all read; only for a target that
    // lists this kind. `table` is the target's.
    virtual void check_target(SettingsReader& /*reader*/, const toml::table& /*table*/,
                              const std::string& /*path*/, const TargetConfig& /*target*/) const {}
    // Whether the target's `expect = "reject"` applies to its runs.
    virtual bool honours_expect() const { return false; }
    // The servers its runs of the target log in to (host names as configured): a refused login
    // slows the next ones from the same address, whichever target makes them.
    virtual std::vector<std::string> hosts_logged_into(const TargetConfig& /*target*/) const {
        return {};
    }

    // At load: builds what its runs need from the target's settings (secrets, TLS contexts).
    // False when it cannot, with the errors added to `load`. Only for a target listing it.
    virtual bool compile(CompiledTarget& /*target*/, LoadContext& /*load*/,
                         const std::string& /*path*/) const {
        return true;
    }
    // Once a whole load has compiled: takes the shared resources its runs use.
    virtual void attach(CompiledTarget& /*target*/, ProbeResources& /*resources*/) const {}

    // Whether a run of the target due at `now` must not start (and why); when it may, what it
    // spends of its server's budgets is counted. Every run may, unless the kind says otherwise.
    virtual std::optional<HeldBack> hold_back(const CompiledTarget& /*target*/,
                                              std::chrono::steady_clock::time_point /*now*/) const {
        return std::nullopt;
    }
    // How many runs of one target may be in flight at once: one, unless runs mostly wait.
    virtual std::size_t max_runs_in_flight(const CompiledTarget& /*target*/) const { return 1; }
    virtual boost::asio::awaitable<Outcome> run(ProbeRun run) const = 0;

    // Its own series for one instance of a target (labelled with its name and instance
    // labels); null when it has none beyond the common ones.
    virtual std::unique_ptr<ProbeExtraSeries> extra_series(ProbeResources& /*resources*/,
                                                           const TargetConfig& /*instance*/) const {
        return nullptr;
    }
};

}  // namespace mailcanary
