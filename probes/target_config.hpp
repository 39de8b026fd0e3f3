// A target's configuration as the probe kinds read it: where the server is, how to reach it,
// and the settings of its probes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/duration.hpp"
#include "protocols/auth_config.hpp"
#include "protocols/ip_family.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary {

// A probe kind's settings for one target, read by the kind from its table [targets.<kind>].
class ProbeOptions {
  public:
    virtual ~ProbeOptions() = default;
    virtual bool equals(const ProbeOptions& other) const = 0;
};

// The options of a kind as a plain struct with a defaulted ==.
template <typename Settings>
class TypedOptions final : public ProbeOptions {
  public:
    explicit TypedOptions(Settings value) : settings(std::move(value)) {}
    bool equals(const ProbeOptions& other) const override {
        const auto* same = dynamic_cast<const TypedOptions*>(&other);
        return same != nullptr && same->settings == settings;
    }
    const Settings settings;
};

class ProbeOptionsByKind {
  public:
    void set(std::string_view kind, std::shared_ptr<const ProbeOptions> options) {
        by_kind_[std::string(kind)] = std::move(options);
    }
    bool contains(std::string_view kind) const { return by_kind_.find(kind) != by_kind_.end(); }
    // The kind's settings, if its table was given (and is of that type).
    template <typename Settings>
    const Settings* find(std::string_view kind) const {
        const auto found = by_kind_.find(kind);
        if (found == by_kind_.end()) return nullptr;
        const auto* typed = dynamic_cast<const TypedOptions<Settings>*>(found->second.get());
        return typed != nullptr ? &typed->settings : nullptr;
    }
    bool operator==(const ProbeOptionsByKind& other) const {
        return std::equal(by_kind_.begin(), by_kind_.end(), other.by_kind_.begin(),
                          other.by_kind_.end(), [](const auto& a, const auto& b) {
                              return a.first == b.first && a.second->equals(*b.second);
                          });
    }

  private:
    std::map<std::string, std::shared_ptr<const ProbeOptions>, std::less<>> by_kind_;
};

// What the auth probe counts as success: the server accepting the credentials, or refusing
// them with a 5xx (a negative test, e.g. that a disabled account stays disabled).
enum class Expectation { success, reject };

// How far the accept probe goes: send the message, or stop after RCPT TO (then RSET) so that
// nothing is delivered.
enum class AcceptMode { data, rcpt };

// The probe message the accept probe sends.
struct MessageConfig {
    std::string from;             // envelope sender and From header
    std::vector<std::string> to;  // recipients, at least one
    std::string subject = "mailcanary probe";
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    AcceptMode mode = AcceptMode::data;
    // At most so many messages an hour from the account (the login, else the sender) to the
    // server, the smallest of the targets sharing it winning; none: no budget.
    std::optional<std::size_t> max_messages_per_hour;

    bool operator==(const MessageConfig&) const = default;
};

// What `ip` asks of a target: any family (one instance, no label), one family (one instance with
// an ip_family label), or both (two instances, one per family, probed in the same round).
enum class IpChoice { automatic, v4, v6, both };

// The labels that tell the instances of one target apart ((ip_family, v4)), carried into every
// series, result and job of the instance, in this order; empty for an `ip = "auto"` target, so
// that its series keep the identity they had before instances existed.
using InstanceLabels = std::vector<std::pair<std::string, std::string>>;

struct TargetConfig {
    std::string name;
    std::string host;  // an `mx` target's instance: the MX host it probes; else as configured
    // `mx`: the mail domain whose MX hosts are probed (each one an instance labelled mx_host,
    // found at run time: agent/mx_targets.hpp); empty for a target with a `host`.
    std::string mx{};
    uint16_t port = 25;  // 465 when tls = "implicit" and no port is given
    TlsMode tls = TlsMode::starttls;
    IpChoice ip = IpChoice::automatic;   // as configured
    IpFamily ip_family = IpFamily::any;  // this instance's: from `ip`, or `mailcanary check -4/-6`
    InstanceLabels instance_labels{};    // set when `ip` pins the family (expand_instances)
    std::string helo;
    Duration interval{};
    Duration timeout{};
    std::vector<std::string> probes;  // names from the probe table, e.g. "connect"
    TlsOptions tls_options;
    std::optional<AuthConfig> auth;     // required when probes include "auth"
    bool allow_plaintext_auth = false;  // false: credentials are never sent without TLS
    Expectation expect = Expectation::success;
    std::optional<MessageConfig> message;  // required when probes include "accept" or "roundtrip"
    // At most so many connections a minute to the host, shared by every target pointing there
    // (the smallest wins); none: no budget.
    std::optional<std::size_t> max_connections_per_minute;
    // How long to stay away first when the server throttles the agent (then twice as long each
    // time in a row, up to 15 minutes); the longest of the targets sharing the server (host and
    // port) wins.
    Duration throttle_backoff = std::chrono::seconds(30);
    // The tables of the probe kinds that have one ([targets.roundtrip], [targets.imap]), each
    // read by its kind whenever it is present, even if the kind is not among `probes`.
    ProbeOptionsByKind probe_options;

    bool operator==(const TargetConfig&) const = default;

    // The family of a connection to the target's other servers (its IMAP server): `ip` is about
    // the SMTP host's addresses, so only `mailcanary check -4/-6`, which names one server, pins it.
    IpFamily other_server_family() const {
        return ip == IpChoice::automatic ? ip_family : IpFamily::any;
    }

    // The instance's identity where the target's name was one (jobs, results): the name, then
    // the labels as `name{label="value",...}`; the bare name without labels.
    std::string instance_key() const {
        std::string key = name;
        for (std::size_t i = 0; i < instance_labels.size(); ++i) {
            key += (i == 0 ? "{" : ",") + instance_labels[i].first + "=\"" +
                   instance_labels[i].second + "\"";
        }
        return instance_labels.empty() ? key : key + "}";
    }
};

// The instances the targets stand for, in order: an `ip = "both"` target becomes two (v4, then
// v6), a pinned family one with its label, `auto` itself; an `mx` target not yet given its MX
// host stays one.
std::vector<TargetConfig> expand_instances(std::vector<TargetConfig> targets);
// How many targets `instances` (as expand_instances gives them) stand for.
std::size_t count_targets(const std::vector<TargetConfig>& instances);

}  // namespace mailcanary
