#include "probes/smtp_host.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/text.hpp"
#include "protocols/smtp_session.hpp"

namespace mailcanary {

SmtpPoliteness politeness_of(const TargetConfig& target) {
    SmtpPoliteness politeness;
    politeness.max_connections_per_minute = target.max_connections_per_minute;
    politeness.first_backoff = target.throttle_backoff;
    politeness.port = target.port;
    if (target.message && target.message->mode == AcceptMode::data) {
        politeness.max_messages_per_hour = target.message->max_messages_per_hour;
        politeness.account = target.auth ? target.auth->username : target.message->from;
    }
    return politeness;
}

namespace {

// The backoff is its server's: each MX host of an `mx` target is a server of its own (mx_host),
// while the families of one host (ip_family) share their server's.
prometheus::Labels backoff_labels(const TargetConfig& target) {
    prometheus::Labels labels{{"target", target.name}};
    for (const auto& [name, value] : target.instance_labels) {
        if (name == "mx_host") labels.emplace(name, value);
    }
    return labels;
}

}  // namespace

SmtpHost::SmtpHost(std::string name) : name_(std::move(name)) {}

bool SmtpHost::backing_off(std::uint16_t port) const {
    const auto found = backoffs_.find(port);
    return found != backoffs_.end() && found->second.active;
}

std::optional<HeldBack> SmtpHost::admit(const SmtpHostLink& asking, bool sends_message,
                                        Clock::time_point now) {
    if (backoffs_[asking.politeness().port].steps.until(now)) return HeldBack::backoff;
    // The smallest budget of the targets pointing here wins: it is the one someone asked for.
    std::optional<std::size_t> connections;
    std::optional<std::size_t> messages;
    const std::string& account = asking.politeness().account;
    for (const SmtpHostLink* link : links_) {
        const SmtpPoliteness& other = link->politeness();
        if (other.max_connections_per_minute) {
            connections = std::min(connections.value_or(*other.max_connections_per_minute),
                                   *other.max_connections_per_minute);
        }
        if (other.max_messages_per_hour && other.account == account) {
            messages = std::min(messages.value_or(*other.max_messages_per_hour),
                                *other.max_messages_per_hour);
        }
    }
    if (connections && !connections_.allows(now, *connections)) {
        return HeldBack::connection_budget;
    }
    sends_message = sends_message && !account.empty();
    if (sends_message && messages) {
        auto& sent = messages_.try_emplace(account, std::chrono::hours(1)).first->second;
        if (!sent.allows(now, *messages)) return HeldBack::message_budget;
        sent.take(now);
    }
    connections_.take(now);
    return std::nullopt;
}

void SmtpHost::session_ended(std::uint16_t port, const Outcome& outcome, Clock::time_point now) {
    if (outcome.cancelled) return;
    ServerBackoff& backoff = backoffs_[port];
    const std::string server = name_ + ":" + std::to_string(port);
    if (outcome.failure != FailureReason::throttled) {
        backoff.steps.cleared();
        // Only a change is shown: every target on the host has its series, set at its link.
        if (!backoff.active) return;
        log::info("the SMTP server lets the agent in again", {{"server", server}});
        set_backing_off(port, false);
        return;
    }
    // The most patient of the targets pointing at the server sets the first step.
    Duration first = Duration::zero();
    for (const SmtpHostLink* link : links_) {
        if (link->politeness().port == port) {
            first = std::max(first, link->politeness().first_backoff);
        }
    }
    if (first > Duration::zero()) backoff.steps.set_first(first);
    backoff.steps.throttled(now, std::nullopt);
    set_backing_off(port, true);
    log::warn("the SMTP server throttles the agent: no new connection before the backoff ends",
              {{"server", server},
               {"backoff", format_duration(backoff.steps.last_wait())},
               {"detail", outcome.detail}});
}

void SmtpHost::set_backing_off(std::uint16_t port, bool backing_off) {
    backoffs_[port].active = backing_off;
    for (const SmtpHostLink* link : links_) {
        if (link->politeness().port == port) link->show_backoff(backing_off);
    }
}

void BackoffGauges::acquire(const prometheus::Labels& labels) {
    if (family_ == nullptr) return;
    auto& [gauge, users] = by_labels_[labels];
    if (gauge == nullptr) gauge = &family_->Add(labels);
    ++users;
}

void BackoffGauges::release(const prometheus::Labels& labels) {
    const auto found = by_labels_.find(labels);
    if (found == by_labels_.end() || --found->second.second > 0) return;
    family_->Remove(found->second.first);
    by_labels_.erase(found);
}

void BackoffGauges::show(const prometheus::Labels& labels, bool active) {
    if (const auto found = by_labels_.find(labels); found != by_labels_.end())
        found->second.first->Set(active ? 1 : 0);
}

void BackoffGauges::detach() {
    family_ = nullptr;
    by_labels_.clear();
}

SmtpHostLink::SmtpHostLink(std::shared_ptr<SmtpHost> host, std::shared_ptr<BackoffGauges> gauges,
                           prometheus::Labels labels, SmtpPoliteness politeness)
    : host_(std::move(host)),
      gauges_(std::move(gauges)),
      labels_(std::move(labels)),
      politeness_(std::move(politeness)) {
    gauges_->acquire(labels_);
    host_->links_.push_back(this);
    show_backoff(host_->backing_off(politeness_.port));
}

SmtpHostLink::~SmtpHostLink() {
    std::erase(host_->links_, this);
    gauges_->release(labels_);
}

void SmtpHostLink::show_backoff(bool active) const { gauges_->show(labels_, active); }

SmtpHosts::SmtpHosts(prometheus::Registry& registry)
    : gauges_(std::make_shared<BackoffGauges>(
          prometheus::BuildGauge()
              .Name("mailcanary_backoff_active")
              .Help("1 while the SMTP server of the target (each MX host of an mx target) "
                    "throttles the agent: from a throttled reply until a run gets through "
                    "again; runs due meanwhile are skipped (reason backoff).")
              .Register(registry))) {}

SmtpHosts::~SmtpHosts() { gauges_->detach(); }

std::shared_ptr<SmtpHostLink> SmtpHosts::link(const TargetConfig& target) {
    const std::string key = to_upper(target.host);  // host names ignore ASCII case
    std::erase_if(hosts_, [](const auto& entry) { return entry.second.expired(); });
    auto host = hosts_[key].lock();
    if (!host) {
        host = std::make_shared<SmtpHost>(target.host);
        hosts_[key] = host;
    }
    return std::make_shared<SmtpHostLink>(std::move(host), gauges_, backoff_labels(target),
                                          politeness_of(target));
}

void SmtpProbeKind::attach(CompiledTarget& target, ProbeResources& resources) const {
    // An instance with no server to reach (an `mx` target's domain without MX host) spends no
    // budget: its runs fail at once with their reason, never held back.
    if (target.smtp_host || target.unresolved) return;
    auto& hosts = resources.get<SmtpHosts>(
        [&resources] { return std::make_unique<SmtpHosts>(resources.registry()); });
    target.smtp_host = hosts.link(target.config);
}

std::optional<HeldBack> SmtpProbeKind::hold_back(const CompiledTarget& target,
                                                 std::chrono::steady_clock::time_point now) const {
    if (!target.smtp_host) return std::nullopt;
    return target.smtp_host->host().admit(*target.smtp_host, sends_message(target), now);
}

boost::asio::awaitable<Outcome> run_smtp_session(const ProbeRun& run, smtp::Dialog& dialog) {
    Outcome outcome = co_await smtp::run_dialog(run.target.smtp, run.session(), dialog);
    if (run.target.smtp_host) {
        run.target.smtp_host->host().session_ended(run.target.smtp.port, outcome,
                                                   std::chrono::steady_clock::now());
    }
    co_return outcome;
}

}  // namespace mailcanary
