#include "agent/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <span>
#include <sstream>
#include <system_error>

#include <toml++/toml.h>

#include "agent/probe_allow.hpp"
#include "common/text.hpp"
#include "probes/probe_kind.hpp"
#include "probes/registry.hpp"
#include "probes/settings_reader.hpp"
#include "probes/smtp_host.hpp"
#include "probes/validators.hpp"

namespace mailcanary {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultListenAddress = ":9725";
constexpr std::array kDefaultDurationBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,  2.5,   5.0,  10.0};
constexpr size_t kMaxDurationBuckets = 50;
constexpr Duration kDefaultInterval = std::chrono::seconds(30);
constexpr std::string_view kDefaultProbe = "connect";
constexpr std::string_view kDefaultSecretFile = "mailcanary.secret";

constexpr std::array<std::string_view, 6> kRootKeys{"agent",   "metrics", "defaults",
                                                    "targets", "modules", "probe_endpoint"};
constexpr std::array<std::string_view, 6> kAgentKeys{"listen_addresses", "max_concurrent_probes",
                                                     "secret_file",      "shard_index",
                                                     "shard_count",      "dns_servers"};
constexpr std::array<std::string_view, 2> kMetricsKeys{"duration_buckets", "phase_histograms"};
constexpr std::array<std::string_view, 5> kDefaultsKeys{"interval", "timeout", "helo", "tls",
                                                        "probes"};
// A target's own keys; the tables of probe kinds that have one ([targets.roundtrip]) come from
// the probe table (target_keys()).
constexpr std::array<std::string_view, 17> kTargetKeys{"name",
                                                       "host",
                                                       "mx",
                                                       "port",
                                                       "tls",
                                                       "helo",
                                                       "interval",
                                                       "timeout",
                                                       "probes",
                                                       "tls_options",
                                                       "auth",
                                                       "allow_plaintext_auth",
                                                       "expect",
                                                       "message",
                                                       "max_connections_per_minute",
                                                       "throttle_backoff",
                                                       "ip"};
// A budget beyond this is none: a minute has no room for more sessions to one host.
constexpr std::int64_t kMostConnectionsPerMinute = 10000;
// The first wait after a throttled reply is at least this, and at most the backoff's longest
// step (docs/configuration.md, "Throttling and budgets").
constexpr Duration kShortestThrottleBackoff = std::chrono::seconds(1);

// A module is a target without host, port or schedule: the request names the host and port.
constexpr std::array<std::string_view, 8> kModuleKeys{"name",    "probes",      "tls",  "helo",
                                                      "timeout", "tls_options", "auth", "message"};
constexpr std::array<std::string_view, 2> kProbeEndpointKeys{"allow", "min_interval_per_host"};
constexpr std::string_view kDefaultModuleProbe = "connect";

constexpr std::array<Choice<IpChoice>, 4> kIpChoices{{
    {"auto", IpChoice::automatic},
    {"v4", IpChoice::v4},
    {"v6", IpChoice::v6},
    {"both", IpChoice::both},
}};

constexpr std::array<Choice<Expectation>, 2> kExpectations{{
    {"success", Expectation::success},
    {"reject", Expectation::reject},
}};

// What a target inherits from [defaults]; empty optionals stand for invalid defaults, which are
// reported once at [defaults] and must not cause follow-up errors in every target.
struct TargetDefaults {
    std::optional<Duration> interval = kDefaultInterval;
    std::optional<Duration> timeout = kDefaultTimeout;
    std::string helo;
    TlsMode tls = TlsMode::starttls;
    std::vector<std::string> probes{std::string(kDefaultProbe)};
};

// The keys a target table may have: its own and the probe kinds' tables.
const std::vector<std::string_view>& target_keys() {
    static const std::vector<std::string_view> keys = [] {
        std::vector<std::string_view> all(kTargetKeys.begin(), kTargetKeys.end());
        for (const ProbeKind* kind : all_probes()) {
            if (kind->has_own_table()) all.push_back(kind->name());
        }
        return all;
    }();
    return keys;
}

// "host:port", "[v6addr]:port" or ":port"; the syntax only, nothing is resolved.
std::optional<std::string> check_listen_address(const std::string& address) {
    if (address.empty()) return "must not be empty";
    if (has_space_or_control(address)) return "must not contain spaces or control characters";
    std::string_view host = address;
    std::string_view port;
    if (address.front() == '[') {
        const size_t close = address.find(']');
        if (close == std::string::npos || close + 1 >= address.size() ||
            address[close + 1] != ':') {
            return "an IPv6 address is written \"[addr]:port\"";
        }
        host = std::string_view(address).substr(1, close - 1);
        port = std::string_view(address).substr(close + 2);
        if (host.empty()) return "empty IPv6 address between '[' and ']'";
    } else {
        const size_t colon = address.rfind(':');
        if (colon == std::string::npos)
            return "expected \"host:port\", \"[v6addr]:port\" or \":port\"";
        host = std::string_view(address).substr(0, colon);
        port = std::string_view(address).substr(colon + 1);
        if (host.find_first_of(":[]") != std::string_view::npos) {
            return "an IPv6 address must be in brackets: \"[addr]:port\"";
        }
    }
    return check_port_text(port);
}

std::optional<std::string> check_dns_server(const std::string& text) {
    std::string problem;
    if (parse_dns_server(text, problem)) return std::nullopt;
    return problem;
}

std::optional<std::string> check_probe_name(const std::string& name) {
    if (find_probe(name) != nullptr) return std::nullopt;
    std::vector<std::string_view> known;
    for (const ProbeKind* kind : all_probes()) known.push_back(kind->name());
    std::string message = "unknown probe " + in_quotes(name);
    if (auto suggestion = closest_match(name, known)) {
        message += "; did you mean " + in_quotes(*suggestion) + "?";
    }
    return message + " (known probes: " + comma_separated(known) + ")";
}

// The agent creates the secret file on first start; what is there already must be a file.
std::optional<std::string> check_secret_file(const std::string& file) {
    return check_regular_if_exists(file, "secret file");
}

class ConfigReader : public SettingsReader {
  public:
    using SettingsReader::read;
    using SettingsReader::SettingsReader;

    Config read(const toml::table& root, const ShardFlags& shard_flags) {
        check_known_keys(root, "", kRootKeys);
        Config config;
        config.source_path = file();
        config.agent = read_agent(read_section(root, "", "agent"), shard_flags);
        config.agent.metrics = read_metrics(read_section(root, "", "metrics"));
        const TargetDefaults defaults = read_defaults(read_section(root, "", "defaults"));
        // From here on a target is one instance: an `ip = "both"` target is two.
        config.targets = expand_instances(read_targets(root, defaults));
        config.modules = read_modules(root, defaults);
        config.probe_endpoint =
            read_probe_endpoint(read_section(root, "", "probe_endpoint"), config.targets);
        return config;
    }

    // Problems with the flags, which have no place in the file.
    std::vector<ConfigError> take_flag_errors() { return std::move(flag_errors_); }

  private:
    std::vector<ConfigError> flag_errors_;

    Setting<std::vector<std::string>> read_probes(const toml::table& table, std::string_view path) {
        return read_string_list(table, path, "probes", "probe names", check_probe_name);
    }

    Setting<std::string> read_helo(const toml::table& table, std::string_view path) {
        return checked(read<std::string>(table, path, "helo"), path, "helo", check_helo);
    }

    AgentConfig read_agent(const toml::table& table, const ShardFlags& shard_flags) {
        constexpr std::string_view path = "agent";
        check_known_keys(table, path, kAgentKeys);
        AgentConfig agent;
        agent.listen_addresses =
            read_string_list(table, path, "listen_addresses", "addresses", check_listen_address)
                .value.value_or(std::vector<std::string>{std::string(kDefaultListenAddress)});
        const Setting<int64_t> max_probes =
            read_integer(table, path, "max_concurrent_probes", 1, kMaxConcurrentProbesLimit);
        if (max_probes.value)
            agent.max_concurrent_probes = static_cast<unsigned>(*max_probes.value);
        const Setting<std::string> secret_file =
            checked(read_path(table, path, "secret_file"), path, "secret_file", check_secret_file);
        agent.secret_file = secret_file.value.value_or(resolve(kDefaultSecretFile));
        if (secret_file.present()) {
            warn_if_others_read(secret_file, path, "secret_file", "secret file");
        } else if (auto problem = check_not_world_readable(agent.secret_file, "secret file")) {
            warning(table.source(), child_key(path, "secret_file"), std::move(*problem));
        }
        agent.shard = read_shard(table, path, shard_flags);
        const auto servers =
            read_string_list(table, path, "dns_servers", "DNS server addresses", check_dns_server);
        for (const std::string& text : servers.value.value_or(std::vector<std::string>{})) {
            std::string problem;
            if (auto server = parse_dns_server(text, problem)) agent.dns_servers.push_back(*server);
        }
        return agent;
    }

    // shard_index and shard_count, each replaced by its flag when given. A wrong index is
    // blamed where it was given: at its flag or at its key.
    Shard read_shard(const toml::table& table, std::string_view path, const ShardFlags& flags) {
        const Setting<int64_t> count = read_integer(table, path, "shard_count", 1, kMaxShardCount);
        const Setting<ShardIndexSetting> index = read_shard_index(table, path);
        if ((!flags.count && count.present() && !count.value) ||
            (!flags.index && index.present() && !index.value)) {
            return {};  // already reported
        }
        Shard shard;
        shard.count = flags.count.value_or(static_cast<unsigned>(count.value.value_or(1)));
        const ShardIndexSetting wanted =
            flags.index ? *flags.index : index.value.value_or(ShardIndexSetting{0});
        const auto blame = [&](std::string message) {
            if (flags.index) {
                flag_errors_.push_back({"command line", 0, 0, "--shard.index", std::move(message)});
            } else {
                error(index.node->source(), child_key(path, "shard_index"), std::move(message));
            }
        };
        if (wanted.number) {
            shard.index = *wanted.number;
        } else {
            const std::string host_name = machine_host_name();
            const std::optional<unsigned> ordinal = ordinal_of_host_name(host_name);
            if (!ordinal) {
                blame("the host name " + in_quotes(host_name) +
                      " does not end in \"-<ordinal>\" (as a StatefulSet's pods do)");
                return {};
            }
            shard.index = *ordinal;
        }
        if (shard.index >= shard.count) {
            const std::string count_source = flags.count       ? "--shard.count"
                                             : count.present() ? "shard_count"
                                                               : "the default shard_count";
            blame("shard index " + std::to_string(shard.index) + " must be less than " +
                  count_source + " " + std::to_string(shard.count));
            return {};
        }
        return shard;
    }

    // A number, or "from-hostname".
    Setting<ShardIndexSetting> read_shard_index(const toml::table& table, std::string_view path) {
        Setting<ShardIndexSetting> setting{table.get("shard_index"), std::nullopt};
        if (!setting.present()) return setting;
        const std::string key = child_key(path, "shard_index");
        std::string text;
        if (const auto* number = setting.node->as_integer()) {
            text = std::to_string(number->get());
        } else if (const auto* string = setting.node->as_string()) {
            text = string->get();
        } else {
            report_type(*setting.node, key, "an integer or \"from-hostname\"");
            return setting;
        }
        std::string problem;
        setting.value = parse_shard_index(text, problem);
        if (!setting.value) error(setting.node->source(), key, std::move(problem));
        return setting;
    }

    MetricsConfig read_metrics(const toml::table& table) {
        constexpr std::string_view path = "metrics";
        check_known_keys(table, path, kMetricsKeys);
        MetricsConfig metrics;
        metrics.duration_buckets =
            read_buckets(table, path)
                .value_or(std::vector<double>(kDefaultDurationBuckets.begin(),
                                              kDefaultDurationBuckets.end()));
        metrics.phase_histograms = read<bool>(table, path, "phase_histograms").value.value_or(true);
        return metrics;
    }

    // Histogram bucket bounds in seconds: 1..50 finite numbers > 0, strictly increasing.
    std::optional<std::vector<double>> read_buckets(const toml::table& table,
                                                    std::string_view path) {
        const toml::node* node = table.get("duration_buckets");
        if (node == nullptr) return std::nullopt;
        const std::string key = child_key(path, "duration_buckets");
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            report_type(*node, key, "an array of numbers");
            return std::nullopt;
        }
        if (array->empty() || array->size() > kMaxDurationBuckets) {
            error(node->source(), key,
                  "must have 1 to " + std::to_string(kMaxDurationBuckets) + " entries, got " +
                      std::to_string(array->size()));
            return std::nullopt;
        }
        std::vector<double> bounds;
        bool all_valid = true;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            std::optional<double> bound = bucket_bound(element, element_key(key, i), bounds);
            all_valid = all_valid && bound;
            // An invalid bound is left out, so the next one is compared with the last good one.
            if (bound) bounds.push_back(*bound);
        }
        if (!all_valid) return std::nullopt;
        return bounds;
    }

    std::optional<double> bucket_bound(const toml::node& element, const std::string& key,
                                       const std::vector<double>& previous_bounds) {
        std::optional<double> bound;
        if (const auto* integer = element.as_integer()) bound = static_cast<double>(integer->get());
        if (const auto* floating = element.as_floating_point()) bound = floating->get();
        if (!bound) {
            report_type(element, key, "a number of seconds");
            return std::nullopt;
        }
        std::string problem;
        if (!std::isfinite(*bound) || *bound <= 0) {
            problem = "must be a finite number of seconds greater than 0";
        } else if (!previous_bounds.empty() && *bound <= previous_bounds.back()) {
            std::ostringstream previous;
            previous << previous_bounds.back();
            problem = "must be greater than the bucket before it (" + previous.str() + ")";
        }
        if (problem.empty()) return bound;
        error(element.source(), key, std::move(problem));
        return std::nullopt;
    }

    TargetDefaults read_defaults(const toml::table& table) {
        constexpr std::string_view path = "defaults";
        check_known_keys(table, path, kDefaultsKeys);
        TargetDefaults defaults;
        const Setting<Duration> interval = read_duration(table, path, "interval");
        const Setting<Duration> timeout = read_duration(table, path, "timeout");
        check_timeout_below_interval(interval, timeout, defaults, path, "the built-in default");
        if (interval.present()) defaults.interval = interval.value;
        if (timeout.present()) defaults.timeout = timeout.value;
        const std::string helo = read_helo(table, path).value.value_or("");
        defaults.helo = helo.empty() ? machine_host_name() : helo;
        defaults.tls = read_choice(table, path, "tls", kTlsModes, "TLS mode")
                           .value.value_or(TlsMode::starttls);
        if (auto probes = read_probes(table, path).value) defaults.probes = std::move(*probes);
        return defaults;
    }

    // Checked where interval or timeout is set, so one bad pair in [defaults] is reported once
    // rather than in every target inheriting it. The error points at the timeout if this table
    // sets it, else at the interval.
    void check_timeout_below_interval(const Setting<Duration>& interval,
                                      const Setting<Duration>& timeout,
                                      const TargetDefaults& inherited, std::string_view path,
                                      std::string_view inherited_from) {
        if (!interval.present() && !timeout.present()) return;
        const std::optional<Duration> interval_value =
            interval.present() ? interval.value : inherited.interval;
        const std::optional<Duration> timeout_value =
            timeout.present() ? timeout.value : inherited.timeout;
        if (!interval_value || !timeout_value || *timeout_value < *interval_value) return;
        const auto describe = [&](const Setting<Duration>& setting, Duration value) {
            return format_duration(value) +
                   (setting.present() ? "" : " (" + std::string(inherited_from) + ")");
        };
        const Setting<Duration>& blamed = timeout.present() ? timeout : interval;
        error(blamed.node->source(), child_key(path, timeout.present() ? "timeout" : "interval"),
              "timeout " + describe(timeout, *timeout_value) + " must be shorter than interval " +
                  describe(interval, *interval_value));
    }

    // The entries of an array of tables ([[targets]], [[modules]]), each read by `read_one`
    // into a struct with a `name`, which must be unique. An absent array is empty.
    template <typename ReadOne>
    std::vector<TargetConfig> read_named_tables(const toml::table& root, std::string_view key,
                                                std::string_view what, ReadOne read_one) {
        const toml::node* node = root.get(key);
        if (node == nullptr) return {};
        const toml::array* array = node->as_array();
        if (array == nullptr) {
            report_type(*node, std::string(key),
                        "an array of tables ([[" + std::string(key) + "]])");
            return {};
        }
        std::vector<TargetConfig> entries;
        std::map<std::string, unsigned, std::less<>> first_line_of_name;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            const std::string path = element_key(key, i);
            if (!element.is_table()) {
                report_type(element, path, "a table");
                continue;
            }
            const toml::table& table = *element.as_table();
            entries.push_back(read_one(table, path));
            const toml::node* name = table.get("name");
            const std::string& name_text = entries.back().name;
            if (name_text.empty()) continue;  // missing or invalid: already reported
            const auto [first, inserted] =
                first_line_of_name.emplace(name_text, name->source().begin.line);
            if (!inserted) {
                error(name->source(), child_key(path, "name"),
                      "duplicate " + std::string(what) + " name " + in_quotes(name_text) +
                          " (first defined at line " + std::to_string(first->second) + ")");
            }
        }
        return entries;
    }

    std::vector<TargetConfig> read_targets(const toml::table& root,
                                           const TargetDefaults& defaults) {
        std::vector<Placed> expects;  // each target's `expect`, where the file sets it
        // An agent without targets still serves its own metrics.
        auto targets = read_named_tables(
            root, "targets", "target", [&](const toml::table& table, const std::string& path) {
                expects.push_back({table.get("expect"), child_key(path, "expect")});
                return read_target(table, path, defaults);
            });
        warn_about_refused_logins(targets, expects);
        return targets;
    }

    std::vector<TargetConfig> read_modules(const toml::table& root,
                                           const TargetDefaults& defaults) {
        return read_named_tables(root, "modules", "module",
                                 [&](const toml::table& table, const std::string& path) {
                                     return read_module(table, path, defaults);
                                 });
    }

    // A module: the settings of a target that say how to probe, not where or when.
    TargetConfig read_module(const toml::table& table, const std::string& path,
                             const TargetDefaults& defaults) {
        check_known_keys(table, path, kModuleKeys);
        TargetConfig module;
        module.name =
            checked(read_required_string(table, path, "name"), path, "name", check_no_control)
                .value.value_or("");
        module.port = 0;  // the request's, or the TLS mode's default
        module.timeout = read_duration(table, path, "timeout")
                             .value.value_or(defaults.timeout.value_or(kDefaultTimeout));
        const Setting<std::vector<std::string>> probes =
            checked(read_probes(table, path), path, "probes", check_module_probes);
        module.probes = probes.value.value_or(std::vector{std::string(kDefaultModuleProbe)});
        read_session_settings(table, path, defaults, module);
        check_probe_requirements(table, path, "modules", probes, module, {});
        return module;
    }

    // Probes of kinds with a table of their own ([targets.imap]) watch more than one server and
    // are not for a module.
    static std::optional<std::string> check_module_probes(const std::vector<std::string>& names) {
        for (const std::string& name : names) {
            if (find_probe(name)->has_own_table()) {
                return "probe " + in_quotes(name) +
                       " cannot run from a module (it needs its own table of a target)";
            }
        }
        return std::nullopt;
    }

    ProbeEndpointConfig read_probe_endpoint(const toml::table& table,
                                            const std::vector<TargetConfig>& targets) {
        constexpr std::string_view path = "probe_endpoint";
        check_known_keys(table, path, kProbeEndpointKeys);
        ProbeEndpointConfig endpoint;
        if (auto allow = read_string_list(table, path, "allow", "entries", check_allow_entry,
                                          EmptyList::allowed)
                             .value) {
            endpoint.allow = std::move(*allow);
        } else {
            // By default only what the configuration probes anyway, whichever shard it is.
            for (const TargetConfig& target : targets) {
                if (!target.host.empty() && std::find(endpoint.allow.begin(), endpoint.allow.end(),
                                                      target.host) == endpoint.allow.end())
                    endpoint.allow.push_back(target.host);
            }
        }
        if (auto interval = read_duration(table, path, "min_interval_per_host").value)
            endpoint.min_interval_per_host = *interval;
        return endpoint;
    }

    struct Placed {
        const toml::node* node;  // null when not in the file
        std::string key;
    };

    // A negative test's refused logins make a server delay the next logins from the agent's
    // address (Dovecot's auth penalty: 2, 4, 8, up to 15 s), and those of other targets to the
    // same server then time out: a false alarm caused by the agent itself.
    void warn_about_refused_logins(const std::vector<TargetConfig>& targets,
                                   const std::vector<Placed>& expects) {
        for (std::size_t i = 0; i < targets.size(); ++i) {
            const TargetConfig& negative = targets[i];
            if (negative.expect != Expectation::reject || expects[i].node == nullptr) continue;
            std::string slowed;
            for (std::size_t j = 0; j < targets.size(); ++j) {
                if (logs_in_to(targets[j], negative.host, /*negative_test=*/i == j)) {
                    slowed += (slowed.empty() ? "" : ", ") + in_quotes(targets[j].name);
                }
            }
            if (slowed.empty()) continue;
            warning(expects[i].node->source(), expects[i].key,
                    "the logins this negative test has refused on " + in_quotes(negative.host) +
                        " delay the next logins from this agent there (Dovecot's auth penalty: "
                        "up to 15 s), and with them those of " +
                        slowed +
                        ": run the negative test from another agent, on another address "
                        "(docs/runbooks.md, "
                        "\"auth penalty\")");
        }
    }

    // Whether a run of one of the target's probes logs in to `host`; the probe that is the
    // negative test itself does not count.
    static bool logs_in_to(const TargetConfig& target, std::string_view host, bool negative_test) {
        for (const std::string& name : target.probes) {
            const ProbeKind* kind = find_probe(name);
            if (kind == nullptr || (negative_test && kind->honours_expect())) continue;
            for (const std::string& logged_into : kind->hosts_logged_into(target)) {
                if (iequals(logged_into, host)) return true;
            }
        }
        return false;
    }

    // What the target asks of its SMTP server's budget and backoff (probes/smtp_host.hpp).
    void read_politeness(const toml::table& table, const std::string& path, TargetConfig& target) {
        if (const auto budget = read_integer(table, path, "max_connections_per_minute", 1,
                                             kMostConnectionsPerMinute)
                                    .value) {
            target.max_connections_per_minute = static_cast<std::size_t>(*budget);
        }
        const Setting<Duration> backoff = checked(
            read_duration(table, path, "throttle_backoff"), path, "throttle_backoff",
            [](Duration first) -> std::optional<std::string> {
                if (first >= kShortestThrottleBackoff && first <= kLongestThrottleBackoff)
                    return std::nullopt;
                return "must be between " + format_duration(kShortestThrottleBackoff) + " and " +
                       format_duration(kLongestThrottleBackoff) + ", got " + format_duration(first);
            });
        if (backoff.value) target.throttle_backoff = *backoff.value;
    }

    // Exactly one of `host` (one server) and `mx` (the MX hosts of a mail domain).
    void read_host_or_mx(const toml::table& table, const std::string& path, TargetConfig& target) {
        const toml::node* mx = table.get("mx");
        if (mx == nullptr) {
            target.host =
                checked(read_required_string(table, path, "host"), path, "host", check_host)
                    .value.value_or("");
            return;
        }
        if (table.get("host") != nullptr) {
            error(mx->source(), child_key(path, "mx"),
                  "`mx` and `host` exclude each other: `mx` probes the domain's MX hosts");
            return;
        }
        target.mx = checked(read_non_empty_string(table, path, "mx"), path, "mx", check_host)
                        .value.value_or("");
    }

    TargetConfig read_target(const toml::table& table, const std::string& path,
                             const TargetDefaults& defaults) {
        check_known_keys(table, path, target_keys());
        TargetConfig target;
        target.name =
            checked(read_required_string(table, path, "name"), path, "name", check_no_control)
                .value.value_or("");
        read_host_or_mx(table, path, target);
        read_session_settings(table, path, defaults, target);
        const Setting<int64_t> port = read_integer(table, path, "port", 1, 65535);
        target.port =
            port.value ? static_cast<uint16_t>(*port.value) : default_smtp_port(target.tls);
        const Setting<Duration> interval = read_duration(table, path, "interval");
        const Setting<Duration> timeout = read_duration(table, path, "timeout");
        check_timeout_below_interval(interval, timeout, defaults, path, "from [defaults]");
        target.interval = interval.value.value_or(defaults.interval.value_or(kDefaultInterval));
        target.timeout = timeout.value.value_or(defaults.timeout.value_or(kDefaultTimeout));
        const Setting<std::vector<std::string>> probes = read_probes(table, path);
        target.probes = probes.value.value_or(defaults.probes);
        target.allow_plaintext_auth =
            read<bool>(table, path, "allow_plaintext_auth").value.value_or(false);
        const Setting<Expectation> expect =
            read_choice(table, path, "expect", kExpectations, "expectation");
        target.expect = expect.value.value_or(Expectation::success);
        target.ip = read_choice(table, path, "ip", kIpChoices, "IP family choice")
                        .value.value_or(IpChoice::automatic);
        read_politeness(table, path, target);
        for (const ProbeKind* kind : all_probes()) {
            if (!kind->has_own_table()) continue;
            if (const toml::table* own = find_section(table, path, kind->name())) {
                const std::string own_path = child_key(path, kind->name());
                if (auto options = kind->read_options(*this, *own, own_path, target)) {
                    target.probe_options.set(kind->name(), std::move(options));
                }
            }
        }
        check_probe_requirements(table, path, "targets", probes, target, expect);
        check_mx_probes(table, path, target);
        return target;
    }

    // The instances of an `mx` target are copies made at run time, which the state a kind
    // builds for its target (a mailbox session) would be shared by: only the SMTP kinds that
    // keep none go with `mx`.
    void check_mx_probes(const toml::table& table, const std::string& path,
                         const TargetConfig& target) {
        if (target.mx.empty()) return;
        for (const ProbeKind* kind : all_probes()) {
            const bool listed = std::find(target.probes.begin(), target.probes.end(),
                                          kind->name()) != target.probes.end();
            if (!kind->has_own_table() || (!listed && !target.probe_options.contains(kind->name())))
                continue;
            error(table.get("mx")->source(), child_key(path, "mx"),
                  "the " + std::string(kind->name()) +
                      " probe does not go with `mx` (only connect, auth and accept do)");
        }
    }

    // How a session with the server goes, the same in a target and a module: TLS mode, HELO
    // name, TLS options, login and probe message.
    void read_session_settings(const toml::table& table, const std::string& path,
                               const TargetDefaults& defaults, TargetConfig& target) {
        target.tls =
            read_choice(table, path, "tls", kTlsModes, "TLS mode").value.value_or(defaults.tls);
        const std::string helo = read_helo(table, path).value.value_or("");
        target.helo = helo.empty() ? defaults.helo : helo;
        target.tls_options = read_tls_options(read_section(table, path, "tls_options"),
                                              child_key(path, "tls_options"));
        if (const toml::table* auth = find_section(table, path, "auth")) {
            target.auth = read_auth(*auth, child_key(path, "auth"));
        }
        if (const toml::table* message = find_section(table, path, "message")) {
            target.message = read_message(*message, child_key(path, "message"));
        }
    }

    // Each listed probe has the tables it needs and its own checks across the target's
    // settings, and a negative test needs a probe that honours it. Skipped when the target's own
    // probes are invalid (already reported); a present but invalid table counts as present, so
    // it is reported once, not again here.
    void check_probe_requirements(const toml::table& table, const std::string& path,
                                  std::string_view section,
                                  const Setting<std::vector<std::string>>& own_probes,
                                  const TargetConfig& target, const Setting<Expectation>& expect) {
        if (own_probes.present() && !own_probes.value) return;
        bool expect_honoured = false;
        for (const std::string& name : target.probes) {
            const ProbeKind& kind = *find_probe(name);  // the names were checked when read
            expect_honoured = expect_honoured || kind.honours_expect();
            for (std::string_view needed : kind.required_tables()) {
                if (table.contains(needed)) continue;
                const std::string problem = "probe " + in_quotes(kind.name()) + " needs a [" +
                                            std::string(section) + "." + std::string(needed) +
                                            "] table";
                if (own_probes.present()) {
                    error(own_probes.node->source(), child_key(path, "probes"), problem);
                } else {
                    error(table.source(), child_key(path, needed),
                          problem + " (probes from [defaults])");
                }
            }
            kind.check_target(*this, table, path, target);
        }
        if (expect.value == Expectation::reject && !expect_honoured) {
            std::vector<std::string_view> honouring;
            for (const ProbeKind* kind : all_probes()) {
                if (kind->honours_expect()) honouring.push_back(kind->name());
            }
            std::string names;
            for (std::string_view name : honouring) {
                names += (names.empty() ? "" : " or ") + in_quotes(name);
            }
            error(expect.node->source(), child_key(path, "expect"),
                  in_quotes("reject") + " needs the " + names + " probe in this target's probes");
        }
    }
};

// The directory holding the config file, absolute (the current directory for a bare name).
fs::path directory_of(const std::string& config_path) {
    std::error_code ignored;
    const fs::path absolute = fs::absolute(config_path.empty() ? "." : config_path, ignored);
    return config_path.empty() ? absolute : absolute.parent_path();
}

}  // namespace

std::string machine_host_name() {
    std::array<char, 256> buffer{};
    if (gethostname(buffer.data(), buffer.size() - 1) != 0 || buffer[0] == '\0') return "localhost";
    return buffer.data();
}

ConfigResult load_config_string(std::string_view text, const std::string& path_for_errors,
                                const ShardFlags& shard_flags) {
    ConfigReader reader(path_for_errors, directory_of(path_for_errors));
    ConfigResult result;
    try {
        const toml::table root = toml::parse(text, std::string_view(path_for_errors));
        Config config = reader.read(root, shard_flags);
        result.errors = reader.take_errors();
        result.warnings = reader.take_warnings();
        for (auto& error : reader.take_flag_errors()) result.errors.push_back(std::move(error));
        if (result.errors.empty()) result.config = std::move(config);
    } catch (const toml::parse_error& parse_error) {
        reader.error(parse_error.source(), "", std::string(parse_error.description()));
        result.errors = reader.take_errors();
    }
    const auto by_place = [](const ConfigError& a, const ConfigError& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    };
    std::stable_sort(result.errors.begin(), result.errors.end(), by_place);
    std::stable_sort(result.warnings.begin(), result.warnings.end(), by_place);
    return result;
}

ConfigResult load_config_file(const std::string& path, const ShardFlags& shard_flags) {
    ConfigError error;
    if (auto contents = read_config_file(path, "config", error))
        return load_config_string(*contents, path, shard_flags);
    return {std::nullopt, {std::move(error)}, {}};
}

void keep_own_shard(Config& config) {
    std::erase_if(config.targets, [&shard = config.agent.shard](const TargetConfig& target) {
        return !owns(shard, target.name);
    });
}

}  // namespace mailcanary
