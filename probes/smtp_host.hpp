// The SMTP hosts the agent connects to, shared by every probe of every target pointing at one
// (by host name). While a server (the host's port) throttles the agent (protocols/
// smtp_throttling) no run connects to it before its backoff has passed; the host's connections
// a minute (every port) and each account's messages an hour stay within the budgets the targets
// set, the smallest winning (docs/configuration.md, "Throttling and budgets"). A run held back is
// not started: the scheduler counts it as skipped (ProbeKind::hold_back).
#pragma once

#include <utility>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/throttle_backoff.hpp"
#include "common/window_budget.hpp"
#include "probes/probe_kind.hpp"
#include "protocols/smtp_dialog.hpp"

namespace mailcanary {

class SmtpHostLink;

// Past the longest wait a provider documents (Microsoft asks for up to about five minutes,
// Gmail's per-IP limits lift within minutes): a probe that stays away longer sees nothing.
inline constexpr Duration kLongestThrottleBackoff = std::chrono::minutes(15);

// What one target asks of its server.
struct SmtpPoliteness {
    std::optional<std::size_t> max_connections_per_minute;
    std::optional<std::size_t> max_messages_per_hour;
    std::string account;      // whose messages count: the login, else the envelope sender
    std::uint16_t port = 25;  // the server on the host: the backoff is its own
    Duration first_backoff = std::chrono::seconds(30);
};

// The politeness a target's settings ask for.
SmtpPoliteness politeness_of(const TargetConfig& target);

class SmtpHost {
  public:
    using Clock = std::chrono::steady_clock;

    explicit SmtpHost(std::string name);

    const std::string& name() const { return name_; }
    // Whether a run of `asking`'s target due at `now` must not connect (and why); when it may,
    // its connection (and its message, if it sends one) is counted.
    std::optional<HeldBack> admit(const SmtpHostLink& asking, bool sends_message,
                                  Clock::time_point now);
    // A run's session to the server on `port` ended as `outcome`: a throttled one starts or
    // lengthens its backoff, any other answer ends it. A stopped run says nothing.
    void session_ended(std::uint16_t port, const Outcome& outcome, Clock::time_point now);
    // From a throttled reply until a run gets through again (mailcanary_backoff_active).
    bool backing_off(std::uint16_t port) const;

  private:
    friend class SmtpHostLink;
    struct ServerBackoff {
        ThrottleBackoff steps{std::chrono::seconds(30), kLongestThrottleBackoff};
        bool active = false;
    };
    void set_backing_off(std::uint16_t port, bool backing_off);

    std::string name_;
    std::vector<const SmtpHostLink*> links_;  // the targets pointing here, for their budgets
    std::map<std::uint16_t, ServerBackoff> backoffs_;  // by port
    WindowBudget connections_{std::chrono::minutes(1)};
    std::map<std::string, WindowBudget> messages_;  // by account
};

// mailcanary_backoff_active, one series per label set however many links have it (a reload
// links the new target before the old one goes).
class BackoffGauges {
  public:
    explicit BackoffGauges(prometheus::Family<prometheus::Gauge>& family) : family_(&family) {}
    void acquire(const prometheus::Labels& labels);
    void release(const prometheus::Labels& labels);
    void show(const prometheus::Labels& labels, bool active);
    // The family's registry is about to go (with the agent's resources). A link can outlive
    // it, in a run's coroutine frame that its event loop destroys later: it then touches nothing.
    void detach();

  private:
    prometheus::Family<prometheus::Gauge>* family_;  // null once detached
    std::map<prometheus::Labels, std::pair<prometheus::Gauge*, std::size_t>> by_labels_;
};

// A target's tie to its server, made when a load is attached and kept in its CompiledTarget.
class SmtpHostLink {
  public:
    SmtpHostLink(std::shared_ptr<SmtpHost> host, std::shared_ptr<BackoffGauges> gauges,
                 prometheus::Labels labels, SmtpPoliteness politeness);
    ~SmtpHostLink();
    SmtpHostLink(const SmtpHostLink&) = delete;
    SmtpHostLink& operator=(const SmtpHostLink&) = delete;

    const SmtpPoliteness& politeness() const { return politeness_; }
    SmtpHost& host() const { return *host_; }
    void show_backoff(bool active) const;

  private:
    std::shared_ptr<SmtpHost> host_;
    std::shared_ptr<BackoffGauges> gauges_;
    prometheus::Labels labels_;  // of its mailcanary_backoff_active series
    SmtpPoliteness politeness_;
};

// The agent's SMTP servers, by host name, for the agent's life.
class SmtpHosts final : public SharedResource {
  public:
    explicit SmtpHosts(prometheus::Registry& registry);
    ~SmtpHosts() override;
    SmtpHosts(const SmtpHosts&) = delete;
    SmtpHosts& operator=(const SmtpHosts&) = delete;
    std::shared_ptr<SmtpHostLink> link(const TargetConfig& target);

  private:
    std::shared_ptr<BackoffGauges> gauges_;
    std::map<std::string, std::weak_ptr<SmtpHost>> hosts_;
};

// A kind whose runs connect to the target's SMTP server: they keep to its backoff and budgets.
class SmtpProbeKind : public ProbeKind {
  public:
    // Ties the target to its server, once whichever SMTP kinds it lists.
    void attach(CompiledTarget& target, ProbeResources& resources) const override;
    std::optional<HeldBack> hold_back(const CompiledTarget& target,
                                      std::chrono::steady_clock::time_point now) const override;

  protected:
    // Whether a run sends a message, which counts against the account's messages an hour.
    virtual bool sends_message(const CompiledTarget& /*target*/) const { return false; }
};

// smtp::run_dialog, then tells the target's server how the session ended.
boost::asio::awaitable<Outcome> run_smtp_session(const ProbeRun& run, smtp::Dialog& dialog);

}  // namespace mailcanary
