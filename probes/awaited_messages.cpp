#include "probes/awaited_messages.hpp"

#include <algorithm>

#include "protocols/token.hpp"

namespace mailcanary {
namespace {

// Prompt checks look every 1/20 of the time the oldest awaited message has been in flight, so
// the time is known to 5%, but not more often than this.
constexpr int kPromptCheckDivisor = 20;
constexpr auto kPromptCheckMin = std::chrono::milliseconds(25);

}  // namespace

AwaitedMessages::AwaitedMessages(std::string secret, std::shared_ptr<AwaitedTokens> agent_awaits)
    : secret_(std::move(secret)), agent_awaits_(std::move(agent_awaits)) {}

AwaitedMessages::~AwaitedMessages() {
    for (const auto& [token, pending] : pending_) agent_awaits_->remove(token);
}

void AwaitedMessages::expect(const std::string& token, const std::string& target,
                             Clock::time_point now, std::string message_id) {
    pending_[token] = Pending{target, std::nullopt, now, std::move(message_id), {}};
    agent_awaits_->add(token);
}

std::optional<std::string> AwaitedMessages::forget(const std::string& token) {
    const auto found = pending_.find(token);
    if (found == pending_.end()) return std::nullopt;
    std::string target = std::move(found->second.target);
    pending_.erase(found);
    agent_awaits_->remove(token);
    return target;
}

std::optional<std::string> AwaitedMessages::abandon(const std::string& token) {
    auto target = forget(token);
    if (target) abandoned_.add(token, *target);
    return target;
}

std::optional<std::string> AwaitedMessages::give_up_as_lost(const std::string& token) {
    auto target = forget(token);
    if (target) lost_.add(token, *target);
    return target;
}

std::optional<std::string> AwaitedMessages::finish(const std::string& token) {
    return forget(token);
}

const Arrival* AwaitedMessages::arrival(const std::string& token) const {
    const auto found = pending_.find(token);
    if (found == pending_.end() || !found->second.arrival) return nullptr;
    return &*found->second.arrival;
}

std::vector<Bounce> AwaitedMessages::reports(const std::string& token) const {
    const auto found = pending_.find(token);
    if (found == pending_.end()) return {};
    return found->second.reports;
}

bool AwaitedMessages::bounced(const std::string& token) const {
    const auto found = pending_.find(token);
    return found != pending_.end() &&
           std::any_of(found->second.reports.begin(), found->second.reports.end(),
                       [](const Bounce& report) { return report.failed; });
}

std::size_t AwaitedMessages::pending_for(const std::string& target) const {
    return static_cast<std::size_t>(
        std::count_if(pending_.begin(), pending_.end(),
                      [&](const auto& entry) { return entry.second.target == target; }));
}

AwaitedMessages::Classified AwaitedMessages::classify(
    std::string_view header_value, Arrival arrival,
    std::optional<SystemClock::time_point> internal_date, SystemClock::time_point now,
    Duration age_limit) {
    const auto verified = verify_token(header_value, secret_);
    if (!verified) return {Found::not_ours, {}};
    const std::string token(header_value);
    if (const auto waiting = pending_.find(token); waiting != pending_.end()) {
        waiting->second.arrival = std::move(arrival);
        return {Found::awaited, waiting->second.target};
    }
    if (auto late_for = lost_.take(token)) return {Found::late, std::move(*late_for)};
    const bool leftover = unclaimed(token, *verified, internal_date, now, age_limit);
    if (leftover) abandoned_.take(token);
    return {leftover ? Found::leftover : Found::in_flight, {}};
}

bool AwaitedMessages::unclaimed(const std::string& token, const VerifiedToken& verified,
                                std::optional<SystemClock::time_point> internal_date,
                                SystemClock::time_point now, Duration age_limit) const {
    if (agent_awaits_->contains(token)) return false;
    if (abandoned_.contains(token)) return true;
    // Left by another agent sharing the secret, or by an earlier process of this one: its
    // sender may still wait for it until the deadline it signed. An mc1 token does not say,
    // so its age must tell.
    return verified.deadline ? now > *verified.deadline + kDeadlineGrace
                             : internal_date && now - *internal_date > age_limit;
}

AwaitedMessages::ClassifiedReport AwaitedMessages::classify_report(
    std::string_view token, std::string_view message_id, Bounce bounce,
    std::optional<SystemClock::time_point> internal_date, SystemClock::time_point now,
    Duration age_limit) {
    const auto verified = verify_token(token, secret_);
    bounce.verified = verified.has_value();
    ClassifiedReport classified;
    auto run = pending_.end();
    if (verified) {
        const std::string own(token);
        run = pending_.find(own);
        if (run != pending_.end()) {
            classified.found = Found::awaited;
        } else if (lost_.contains(own) ||
                   unclaimed(own, *verified, internal_date, now, age_limit)) {
            // Its run is over: a report about it is a leftover (a late bounce is no late arrival).
            classified.found = Found::leftover;
        } else {
            classified.found = Found::in_flight;
        }
    } else if (token.empty() && !message_id.empty()) {
        // A returned header without a token (cut short, or stripped): its Message-ID ties it
        // to a run, but Message-IDs are not secret, so it proves nothing. A token that does not
        // verify says the message was not this agent's, whatever its Message-ID.
        run = std::find_if(pending_.begin(), pending_.end(), [&](const auto& entry) {
            return entry.second.message_id == message_id;
        });
    }
    if (run == pending_.end()) return classified;
    classified.run = run->first;
    auto& reports = run->second.reports;
    // A sweep may look at the same report again while its removal is pending.
    const bool seen = std::any_of(reports.begin(), reports.end(), [&](const Bounce& report) {
        return report.folder == bounce.folder && report.uid == bounce.uid;
    });
    if (!seen) reports.push_back(std::move(bounce));
    return classified;
}

std::optional<Duration> AwaitedMessages::prompt_check_interval(Clock::time_point now,
                                                               Duration poll_interval) const {
    std::optional<Clock::time_point> oldest;
    for (const auto& [token, pending] : pending_) {
        if (!pending.arrival && (!oldest || pending.since < *oldest)) oldest = pending.since;
    }
    if (!oldest) return std::nullopt;
    const Duration in_flight = now - *oldest;
    return std::min<Duration>(std::max<Duration>(in_flight / kPromptCheckDivisor, kPromptCheckMin),
                              poll_interval);
}

void AwaitedMessages::RecentTokens::add(const std::string& token, const std::string& target) {
    targets_[token] = target;
    order_.push_back(token);
    if (order_.size() > kMaxTokensRemembered) {
        targets_.erase(order_.front());
        order_.pop_front();
    }
}

std::optional<std::string> AwaitedMessages::RecentTokens::take(const std::string& token) {
    const auto found = targets_.find(token);
    if (found == targets_.end()) return std::nullopt;
    std::string target = std::move(found->second);
    targets_.erase(found);
    return target;
}

}  // namespace mailcanary
