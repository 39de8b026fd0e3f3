#include "probes/imap_account.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;

// Without a hint from the server: half a minute, then doubling up to a quarter of an hour. Gmail
// lifts its connection limit as sessions end, its bandwidth limit after up to a day; Microsoft
// asks for up to about five minutes.
constexpr auto kFirstThrottleBackoff = std::chrono::seconds(30);
constexpr auto kLongestThrottleBackoff = std::chrono::minutes(15);

}  // namespace

ImapAccount::Slot::~Slot() {
    if (account_) account_->give_back();
}

ImapAccount::ImapAccount(std::string label, std::size_t max_sessions)
    : label_(std::move(label)),
      max_sessions_(max_sessions),
      backoff_(kFirstThrottleBackoff, kLongestThrottleBackoff) {}

void ImapAccount::session_failed(const Failure& failure, Clock::time_point now) {
    if (failure.reason != FailureReason::throttled) return;
    backoff_.throttled(now, failure.backoff_hint);
    log::warn("the IMAP server throttles the account: no new session before the backoff ends",
              {{"account", label_},
               {"backoff", format_duration(backoff_.last_wait())},
               {"hinted", failure.backoff_hint ? "yes" : "no"},
               {"detail", failure.detail}});
}

asio::awaitable<std::optional<ImapAccount::Slot>> ImapAccount::take_slot(
    asio::steady_timer& timer) {
    const auto self = shared_from_this();
    while (open_ >= max_sessions_) {
        if (Clock::now() >= timer.expiry()) co_return std::nullopt;
        const std::uint64_t arrival = arrivals_++;
        waiting_[arrival] = {&timer, false};
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        const bool woken = waiting_[arrival].second;
        waiting_.erase(arrival);
        // Cancelled by its owner, not by a place given back: it no longer wants one.
        if (!woken && Clock::now() < timer.expiry()) co_return std::nullopt;
    }
    ++open_;
    co_return Slot(self);
}

void ImapAccount::give_back() {
    if (open_ > 0) --open_;
    for (auto& [arrival, waiter] : waiting_) {
        if (waiter.second) continue;  // woken already, not yet back
        waiter.second = true;
        waiter.first->cancel();
        break;
    }
}

std::shared_ptr<ImapAccount> ImapAccounts::account(const std::string& host, std::uint16_t port,
                                                   const std::string& username) {
    const std::string label = username + "@" + host + ":" + std::to_string(port);
    std::erase_if(accounts_, [](const auto& entry) { return entry.second.expired(); });
    if (auto existing = accounts_[label].lock()) return existing;
    auto made = std::make_shared<ImapAccount>(label, kMaxSessionsPerAccount);
    accounts_[label] = made;
    return made;
}

ImapAccounts& imap_accounts(ProbeResources& resources) {
    return resources.get<ImapAccounts>([] { return std::make_unique<ImapAccounts>(); });
}

}  // namespace mailcanary
