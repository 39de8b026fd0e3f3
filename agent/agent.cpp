#include "agent/agent.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "agent/basic_auth.hpp"
#include "agent/descriptor_limit.hpp"
#include "agent/status_api.hpp"
#include "agent/status_page.hpp"
#include "agent/version.hpp"
#include "common/log.hpp"
#include "probes/registry.hpp"
#include "protocols/credentials.hpp"
#include "protocols/tls_contexts.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;

constexpr auto kShutdownBudget = std::chrono::milliseconds(1500);
constexpr auto kHttpGrace = std::chrono::milliseconds(300);

void log_config_errors(const std::vector<ConfigError>& errors) {
    for (const auto& error : errors)
        log::error("configuration error", {{"error", error.to_string()}});
}

}  // namespace

void log_config_warnings(const std::vector<ConfigError>& warnings) {
    for (const auto& warning : warnings)
        log::warn("configuration warning", {{"warning", warning.to_string()}});
}

namespace {

// What every SMTP kind shares (the endpoint and its TLS context, the [auth] credential source,
// the token secret), then each kind's own state; null when something could not be built.
std::shared_ptr<CompiledTarget> compile_target(const TargetConfig& target, LoadContext& load,
                                               const std::string& path,
                                               const std::string& token_secret) {
    auto entry = std::make_shared<CompiledTarget>(target);
    entry->smtp = Endpoint{.host = target.host,
                           .port = target.port,
                           .tls = target.tls,
                           .tls_options = target.tls_options,
                           .tls_context = nullptr,
                           .family = target.ip_family};
    if (!load.complete_endpoint(entry->smtp, path)) return nullptr;
    if (target.auth) {
        entry->smtp_login = load.load_login(*target.auth, path + ".auth");
        if (!entry->smtp_login) return nullptr;
    }
    entry->token_secret = token_secret;
    // A kind's own table is compiled (its secrets read) even while its probe is not listed,
    // so that a mistake shows before the probe is turned on.
    bool all_compiled = true;
    for (const ProbeKind* kind : all_probes()) {
        const bool listed = std::find(target.probes.begin(), target.probes.end(), kind->name()) !=
                            target.probes.end();
        const bool has_table = target.probe_options.contains(kind->name());
        if (listed || has_table) all_compiled = kind->compile(*entry, load, path) && all_compiled;
    }
    return all_compiled ? entry : nullptr;
}

}  // namespace

std::shared_ptr<DnsResolver> make_resolver(const asio::any_io_executor& executor,
                                           const Config& config, std::vector<ConfigError>& errors) {
    DnsResolver::Options options;
    options.servers = config.agent.dns_servers;
    std::string problem;
    auto resolver = DnsResolver::create(executor, std::move(options), problem);
    if (!resolver) errors.push_back({config.source_path, 0, 0, "agent.dns_servers", problem});
    return resolver;
}

CompiledLoad compile_load(const Config& config, std::vector<ConfigError>& errors,
                          SecretPolicy secret_policy, std::shared_ptr<DnsResolver> resolver) {
    CompiledLoad compiled;
    compiled.resolver = resolver;
    // Only an agent that sends probe messages needs (and creates) the token secret.
    const auto sends_mail = [](const std::vector<TargetConfig>& entries) {
        return std::any_of(entries.begin(), entries.end(),
                           [](const TargetConfig& entry) { return entry.message.has_value(); });
    };
    std::string token_secret;
    const bool may_read_secret = secret_policy == SecretPolicy::load_or_create ||
                                 std::filesystem::exists(config.agent.secret_file);
    if ((sends_mail(config.targets) || sends_mail(config.modules)) && may_read_secret) {
        std::string problem;
        auto secret = load_or_create_secret(config.agent.secret_file, problem);
        if (!secret) {
            errors.push_back({config.source_path, 0, 0, "agent.secret_file", problem});
            return compiled;
        }
        token_secret = std::move(*secret);
    }
    TlsContexts contexts;  // new ones at every load: a rotated CA file counts from the reload
    LoadContext load{contexts, config.source_path, errors, std::move(resolver)};
    for (std::size_t index = 0; index < config.targets.size(); ++index) {
        const std::string path = "targets[" + std::to_string(index + 1) + "]";
        if (auto entry = compile_target(config.targets[index], load, path, token_secret))
            compiled.targets.push_back(std::move(entry));
    }
    for (std::size_t index = 0; index < config.modules.size(); ++index) {
        const std::string path = "modules[" + std::to_string(index + 1) + "]";
        if (auto entry = compile_target(config.modules[index], load, path, token_secret))
            compiled.modules.push_back(std::move(entry));
    }
    return compiled;
}

std::vector<std::shared_ptr<CompiledTarget>> compile_targets(
    const Config& config, std::vector<ConfigError>& errors, SecretPolicy secret_policy,
    std::shared_ptr<DnsResolver> resolver) {
    return compile_load(config, errors, secret_policy, std::move(resolver)).targets;
}

std::vector<std::shared_ptr<const CompiledTarget>> attach_resources(
    std::vector<std::shared_ptr<CompiledTarget>> targets, ProbeResources& resources) {
    std::vector<std::shared_ptr<const CompiledTarget>> attached;
    for (auto& target : targets) {
        for (const std::string& name : target->config.probes) {
            find_probe(name)->attach(*target, resources);
        }
        attached.push_back(std::move(target));
    }
    resources.commit();
    return attached;
}

// An `mx` target's MX set, looked up on the agent's loop as its TTL and interval say.
struct Agent::MxWatch {
    explicit MxWatch(const asio::any_io_executor& executor) : timer(executor) {}
    void stop() {
        stopped = true;
        cancel.cancel();
        timer.cancel();
    }

    std::shared_ptr<CompiledTarget> compiled;  // as loaded: no host yet
    MxSetTracker tracker;
    MxKnowledge known;
    std::vector<std::shared_ptr<CompiledTarget>> instances;
    asio::steady_timer timer;  // until the next lookup
    DnsCancel cancel;
    bool stopped = false;
};

Agent::Agent(asio::io_context& io, CliOptions options, Config config, CompiledLoad compiled,
             const std::optional<WebConfig>& web_config)
    : io_(io),
      options_(std::move(options)),
      config_(std::move(config)),
      descriptor_limit_(descriptor_limit()),
      default_max_in_flight_(default_max_concurrent_probes(descriptor_limit_)),
      metrics_(config_.agent.metrics),
      resources_(io.get_executor(), metrics_.registry(), config_.agent.metrics.duration_buckets),
      resolver_(std::move(compiled.resolver)),
      mx_series_(metrics_.registry()),
      scheduler_(io.get_executor(), metrics_, results_, resources_,
                 Scheduler::Options{.max_in_flight = max_in_flight(config_.agent)}, find_probe),
      probe_endpoint_([this](std::shared_ptr<const CompiledTarget> target, const ProbeKind& probe,
                             std::chrono::steady_clock::time_point deadline) {
          return scheduler_.run_now(std::move(target), probe, deadline);
      }),
      http_(
          io.get_executor(), [this](const http::Request& request) { return handle(request); }, {},
          render_pool_.get_executor()) {
    scheduler_.on_run(
        [](const CompiledTarget& target, std::string_view probe, const RunResult& result) {
            if (result.outcome.success()) {
                log::debug("probe succeeded",
                           {{"target", target.config.instance_key()}, {"probe", probe}});
            } else {
                log::info("probe failed", {{"target", target.config.instance_key()},
                                           {"probe", probe},
                                           {"reason", to_string(*result.outcome.failure)},
                                           {"detail", result.outcome.detail}});
            }
        });
    apply_targets(std::move(compiled.targets));
    probe_endpoint_.configure(config_.probe_endpoint, std::move(compiled.modules));
    metrics_.set_shard(config_.agent.shard);
    metrics_.record_reload(true, std::chrono::system_clock::now());
    protect_endpoints(web_config);
}

Agent::~Agent() {
    // A watch's coroutine resumes into the agent: none may outlive it, shut down or not.
    for (auto& [name, watch] : mx_watches_) watch->stop();
}

void Agent::protect_endpoints(const std::optional<WebConfig>& web_config) {
    http::Protection protection;
    if (web_config) {
        protection.tls = web_config->tls_context;
        if (!web_config->basic_auth_users.empty())
            protection.basic_auth = std::make_shared<BasicAuth>(web_config->basic_auth_users);
    }
    serves_tls_ = protection.tls != nullptr;
    http_.protect(std::move(protection));
}

unsigned Agent::max_in_flight(const AgentConfig& agent) const {
    if (!agent.max_concurrent_probes) return default_max_in_flight_;
    const unsigned configured = *agent.max_concurrent_probes;
    if (configured > descriptors_for_runs(descriptor_limit_)) {
        log::warn(
            "max_concurrent_probes is more than the descriptor limit leaves for runs: runs "
            "may fail to open their connection; raise the limit (docs/configuration.md)",
            {{"max_concurrent_probes", std::to_string(configured)},
             {"descriptor_limit", std::to_string(descriptor_limit_)}});
    }
    return configured;
}

int Agent::run() {
    const auto& addresses = options_.listen_addresses.empty() ? config_.agent.listen_addresses
                                                              : options_.listen_addresses;
    const auto failures = http_.listen(addresses);
    for (const auto& failure : failures) log::error("cannot listen", {{"error", failure}});
    if (!failures.empty()) {
        shutdown();
        io_.run();
        return 1;
    }
    for (const auto& endpoint : http_.local_endpoints()) {
        std::string where = endpoint.address().to_string();
        if (endpoint.address().is_v6()) where = "[" + where + "]";
        where += ":" + std::to_string(endpoint.port());
        const std::string scheme = serves_tls_ ? "https://" : "http://";
        log::info("serving metrics", {{"address", where}, {"url", scheme + where + "/metrics"}});
    }
    log::info("started", {{"config", config_.source_path},
                          {"targets", std::to_string(config_.targets.size())},
                          {"shard", std::to_string(config_.agent.shard.index) + "/" +
                                        std::to_string(config_.agent.shard.count)},
                          {"max_concurrent_probes", std::to_string(scheduler_.max_in_flight())},
                          {"descriptor_limit", std::to_string(descriptor_limit_)},
                          {"version", version()}});

    asio::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
    std::function<void(boost::system::error_code, int)> on_signal =
        [&](boost::system::error_code ec, int signal_number) {
            if (ec) return;
            if (signal_number == SIGHUP) {
                std::string report;
                reload(report);
                signals.async_wait(on_signal);
                return;
            }
            log::info("stopping", {{"signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"}});
            signals.cancel();
            shutdown();
        };
    signals.async_wait(on_signal);
    io_.run();
    log::info("stopped");
    return 0;
}

void Agent::shutdown() {
    if (stopping_) return;
    stopping_ = true;
    for (auto& [name, watch] : mx_watches_) watch->stop();
    scheduler_.stop();
    resources_.stop();
    http_.stop(kHttpGrace);
    // Runs in flight say QUIT and end within their goodbye grace: the agent leaves as soon as
    // the last one has ended, and cuts whatever is left after the budget.
    asio::co_spawn(
        io_,
        [this, runs = scheduler_.runs()]() -> asio::awaitable<void> {
            if (!co_await runs->wait_until_empty(std::chrono::steady_clock::now() +
                                                 kShutdownBudget)) {
                log::warn("cutting runs still in flight", {{"runs", std::to_string(runs->size())}});
            }
            io_.stop();
        },
        asio::detached);
}

void Agent::apply_targets(std::vector<std::shared_ptr<CompiledTarget>> targets) {
    std::map<std::string, std::shared_ptr<MxWatch>, std::less<>> watches;
    fixed_targets_.clear();
    for (auto& target : targets) {
        if (target->config.mx.empty()) {
            fixed_targets_.push_back(std::move(target));
            continue;
        }
        auto watch = std::make_shared<MxWatch>(io_.get_executor());
        watch->compiled = std::move(target);
        const auto previous = mx_watches_.find(watch->compiled->config.name);
        // Another domain is another MX set, not a change of this one.
        if (previous != mx_watches_.end() &&
            previous->second->compiled->config.mx == watch->compiled->config.mx) {
            // The instances (the failing one too) stay, with their series, until the next lookup
            // says otherwise; made anew from what the agent knew, with this load's settings.
            watch->tracker = previous->second->tracker;
            watch->known = previous->second->known;
            make_mx_instances(*watch);
        }
        watches.emplace(watch->compiled->config.name, std::move(watch));
    }
    for (auto& [name, watch] : mx_watches_) {
        watch->stop();
        if (!watches.contains(name)) mx_series_.forget(name);
    }
    mx_watches_ = std::move(watches);
    reschedule();
    for (auto& [name, watch] : mx_watches_) asio::co_spawn(io_, watch_mx(watch), asio::detached);
}

void Agent::reschedule() {
    auto targets = fixed_targets_;
    for (auto& [name, watch] : mx_watches_)
        targets.insert(targets.end(), watch->instances.begin(), watch->instances.end());
    scheduler_.apply(attach_resources(std::move(targets), resources_));
}

asio::awaitable<void> Agent::watch_mx(std::shared_ptr<MxWatch> watch) {
    const TargetConfig& target = watch->compiled->config;
    while (!watch->stopped) {
        const auto resolver = resolver_;  // a reload may replace it during the lookup
        auto lookup = co_await resolver->mx(
            target.mx, std::chrono::steady_clock::now() + target.timeout, watch->cancel);
        if (watch->stopped) break;
        // Not cached: looked up again when the answer expires, or after an interval at the
        // latest, so that a change shows within one; a failure soon.
        watch->timer.expires_after(next_mx_lookup(target.interval, lookup));
        if (take_mx_lookup(*watch, std::move(lookup))) reschedule();
        boost::system::error_code ignored;
        co_await watch->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
}

Config Agent::scheduled_config() const {
    if (mx_watches_.empty()) return config_;
    Config config = config_;
    config.targets.clear();
    for (const TargetConfig& target : config_.targets) {
        const auto watch = mx_watches_.find(target.name);
        if (target.mx.empty() || watch == mx_watches_.end() || watch->second->instances.empty()) {
            config.targets.push_back(target);
            continue;
        }
        for (const auto& instance : watch->second->instances)
            config.targets.push_back(instance->config);
    }
    return config;
}

bool Agent::take_mx_lookup(MxWatch& watch, MxLookup lookup) {
    const std::string& name = watch.compiled->config.name;
    const auto now = std::chrono::steady_clock::now();
    if (watch.tracker.observe(lookup)) {
        mx_series_.count_change(name);
        log::info("MX set changed", {{"target", name}, {"mx", watch.compiled->config.mx}});
    }
    // Once per outage: it is looked up again every 10 s meanwhile.
    if (lookup.result == MxLookup::Result::failed && !watch.known.last_failed() &&
        watch.known.answer_lasts(now)) {
        log::warn("MX lookup failed: the hosts of the last answer are probed until its TTL ends",
                  {{"target", name}, {"detail", lookup.error}});
    }
    watch.known.take(std::move(lookup), now, watch.compiled->config.interval);
    return make_mx_instances(watch);
}

bool Agent::make_mx_instances(MxWatch& watch) {
    const MxLookup* basis = watch.known.basis(std::chrono::steady_clock::now());
    if (basis == nullptr) return false;  // not looked up yet
    const std::string& name = watch.compiled->config.name;
    MxInstances made = mx_instances(watch.compiled->config, *basis, watch.known.last_answer());
    mx_series_.set_hosts(name, made.probed, made.dropped);
    if (made.dropped > 0) {
        log::warn("MX hosts beyond the limit are not probed",
                  {{"target", name},
                   {"limit", std::to_string(kMaxMxHosts)},
                   {"dropped", std::to_string(made.dropped)}});
    }
    auto instances = compile_instances(*watch.compiled, std::move(made));
    const auto same = [](const auto& a, const auto& b) {
        return a->config == b->config && a->unresolved.has_value() == b->unresolved.has_value() &&
               (!a->unresolved || (a->unresolved->reason == b->unresolved->reason &&
                                   a->unresolved->detail == b->unresolved->detail));
    };
    const bool changed = !std::equal(instances.begin(), instances.end(), watch.instances.begin(),
                                     watch.instances.end(), same);
    if (changed) watch.instances = std::move(instances);
    return changed;
}

bool Agent::reload(std::string& report) {
    if (stopping_) {
        // The scheduler is stopped: applying a configuration now would start jobs again.
        report = "the agent is stopping; not reloading\n";
        return false;
    }
    auto loaded = load_config_file(options_.config_file, options_.shard);
    CompiledLoad compiled;
    if (loaded.config) {
        keep_own_shard(*loaded.config);
        // The cache stays with configured servers that stay. Without dns_servers, resolv.conf is
        // read again, as getaddrinfo would: a fixed nameserver must not need a restart.
        const auto& servers = loaded.config->agent.dns_servers;
        auto resolver = !servers.empty() && servers == config_.agent.dns_servers && resolver_
                            ? resolver_
                            : make_resolver(io_.get_executor(), *loaded.config, loaded.errors);
        compiled = compile_load(*loaded.config, loaded.errors, SecretPolicy::load_or_create,
                                std::move(resolver));
    }
    // The web configuration is read again too (new users, or TLS files elsewhere): all or nothing
    // with the rest.
    auto web_config = load_web_config(options_.web_config_file, loaded.errors);
    if (!loaded.errors.empty()) {
        metrics_.record_reload(false, std::chrono::system_clock::now());
        log_config_errors(loaded.errors);
        log::error("configuration reload failed; the previous configuration stays in force",
                   {{"config", options_.config_file}});
        report = "reload failed; the previous configuration stays in force:\n";
        for (const auto& error : loaded.errors) report += error.to_string() + "\n";
        return false;
    }
    log_config_warnings(loaded.warnings);
    Config& config = *loaded.config;
    if (options_.listen_addresses.empty() &&
        config.agent.listen_addresses != config_.agent.listen_addresses) {
        log::warn("listen_addresses changed: takes effect at the next restart");
    }
    if (config.agent.metrics != config_.agent.metrics) {
        log::warn("[metrics] changed: takes effect at the next restart");
    }
    if (!options_.web_config_file.empty()) protect_endpoints(web_config);
    scheduler_.set_max_in_flight(max_in_flight(config.agent));
    resolver_ = std::move(compiled.resolver);  // before the MX watches look up with it
    apply_targets(std::move(compiled.targets));
    probe_endpoint_.configure(config.probe_endpoint, std::move(compiled.modules));
    config_.targets = std::move(config.targets);
    config_.modules = std::move(config.modules);
    config_.probe_endpoint = std::move(config.probe_endpoint);
    config_.agent.max_concurrent_probes = config.agent.max_concurrent_probes;
    config_.agent.shard = config.agent.shard;
    config_.agent.dns_servers = config.agent.dns_servers;
    metrics_.set_shard(config_.agent.shard);
    metrics_.record_reload(true, std::chrono::system_clock::now());
    log::info("configuration reloaded", {{"targets", std::to_string(config_.targets.size())},
                                         {"shard", std::to_string(config_.agent.shard.index) + "/" +
                                                       std::to_string(config_.agent.shard.count)}});
    report = "configuration reloaded: " + std::to_string(config_.targets.size()) + " targets\n";
    for (const auto& warning : loaded.warnings) report += "warning: " + warning.to_string() + "\n";
    return true;
}

http::Response Agent::handle(const http::Request& request) {
    const bool read_only = request.method == "GET";
    if (request.path == "/metrics" && read_only) {
        http::Response response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.render_body = [this] { return metrics_.serialize(); };
        return response;
    }
    if (request.path == "/-/healthy" && read_only) return http::plain_text(200, "Healthy\n");
    if (request.path == "/-/ready" && read_only) {
        return stopping_ ? http::plain_text(503, "Stopping\n") : http::plain_text(200, "Ready\n");
    }
    if (request.path == "/-/reload" && request.method == "POST") {
        std::string report;
        const bool ok = reload(report);
        return http::plain_text(ok ? 200 : 500, report);
    }
    if (request.path == "/" && read_only) return serve_status_page();
    if (request.path == "/results" && read_only) return render_results(results_, request);
    if (is_status_api_path(request.path) && read_only) {
        const RunSlots slots{scheduler_.in_flight(), scheduler_.queued(),
                             scheduler_.max_in_flight()};
        return serve_status_api({scheduled_config(), results_, slots}, request);
    }
    if (request.path == "/probe" && read_only) {
        if (stopping_) return http::plain_text(503, "Stopping\n");
        return probe_endpoint_.handle(request, std::chrono::steady_clock::now());
    }

    const bool known = request.path == "/metrics" || request.path == "/-/healthy" ||
                       request.path == "/-/ready" || request.path == "/-/reload" ||
                       request.path == "/" || request.path == "/results" ||
                       request.path == "/probe" || is_status_api_path(request.path);
    if (!known) return http::plain_text(404, "not found: " + request.path + "\n");
    auto response = http::plain_text(
        405, "method " + request.method + " not allowed for " + request.path + "\n");
    response.headers.emplace_back("Allow", request.path == "/-/reload" ? "POST" : "GET, HEAD");
    return response;
}

}  // namespace mailcanary
