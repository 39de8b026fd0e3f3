#include "probes/awaited_messages.hpp"

#include <algorithm>

namespace mailcanary {
namespace {

// Prompt checks look every 1/20 of the time the oldest awaited message has been in flight, so
// the time is known to 5%, but not more often than this.
constexpr int kPromptCheckDivisor = 20;
constexpr auto kPromptCheckMin = std::chrono::milliseconds(25);

}  // namespace

void AwaitedMessages::expect(const std::string& token, const std::string& target,
                             Clock::time_point now) {
    pending_[token] = Pending{target, std::nullopt, now};
}

std::optional<std::string> AwaitedMessages::forget(const std::string& token) {
    const auto found = pending_.find(token);
    if (found == pending_.end()) return std::nullopt;
    std::string target = std::move(found->second.target);
    pending_.erase(found);
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

std::size_t AwaitedMessages::pending_for(const std::string& target) const {
    return static_cast<std::size_t>(
        std::count_if(pending_.begin(), pending_.end(),
                      [&](const auto& entry) { return entry.second.target == target; }));
}

AwaitedMessages::Classified AwaitedMessages::classify(
    const std::string& token, Arrival arrival,
    std::optional<std::chrono::system_clock::time_point> internal_date,
    std::chrono::system_clock::time_point now, Duration age_limit) {
    if (const auto waiting = pending_.find(token); waiting != pending_.end()) {
        waiting->second.arrival = std::move(arrival);
        return {Found::awaited, waiting->second.target};
    }
    if (auto late_for = lost_.take(token)) return {Found::late, std::move(*late_for)};
    // Ours, but nobody waits: abandoned by this process, or left by an earlier one (which may
    // still be a twin agent's run in flight until it is old enough).
    const bool abandoned = abandoned_.take(token).has_value();
    const bool old = internal_date && now - *internal_date > age_limit;
    return {abandoned || old ? Found::leftover : Found::too_young, {}};
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
