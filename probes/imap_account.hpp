// The IMAP accounts the agent logs in to, shared by everything that opens a session to one: the
// imap probe's runs and the round trip's mailbox sessions (one per watched folder). Per account
// (server and user name), at most kMaxSessionsPerAccount sessions are open at once, and while
// the server throttles the account (protocols/imap_throttling) nobody connects to it before the
// backoff it asked for has passed (docs/configuration.md, "Connections per account").
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/throttle_backoff.hpp"
#include "probes/probe_kind.hpp"
#include "protocols/failure_reason.hpp"

namespace mailcanary {

// Gmail refuses a 16th session of one account, Dovecot an 11th from one address by default:
// the agent stays well below both (docs/configuration.md).
inline constexpr std::size_t kMaxSessionsPerAccount = 8;

class ImapAccount : public std::enable_shared_from_this<ImapAccount> {
  public:
    using Clock = std::chrono::steady_clock;

    // A session's place among the account's, given back when destroyed.
    class Slot {
      public:
        explicit Slot(std::shared_ptr<ImapAccount> account) : account_(std::move(account)) {}
        Slot(Slot&&) = default;
        Slot& operator=(Slot&&) = default;
        ~Slot();

      private:
        std::shared_ptr<ImapAccount> account_;
    };

    // `label`: "user@host:port", for logs.
    ImapAccount(std::string label, std::size_t max_sessions);

    const std::string& label() const { return label_; }
    std::size_t max_sessions() const { return max_sessions_; }
    std::size_t open_sessions() const { return open_; }

    // A session to the account failed as `failure`: when throttled, nobody connects before the
    // backoff is over.
    void session_failed(const Failure& failure, Clock::time_point now = Clock::now());
    // A login worked: the server takes the account's sessions again.
    void logged_in() { backoff_.cleared(); }
    // Until when nobody connects, while the server throttles the account.
    std::optional<Clock::time_point> backoff_until(Clock::time_point now = Clock::now()) const {
        return backoff_.until(now);
    }

    // A place for one more session, waiting for one to be given back until `timer` expires (or
    // its owner cancels it: then nothing).
    boost::asio::awaitable<std::optional<Slot>> take_slot(boost::asio::steady_timer& timer);

  private:
    void give_back();

    std::string label_;
    std::size_t max_sessions_;
    std::size_t open_ = 0;
    ThrottleBackoff backoff_;
    // Those waiting for a place, in order, and whether a place given back woke them.
    std::map<std::uint64_t, std::pair<boost::asio::steady_timer*, bool>> waiting_;
    std::uint64_t arrivals_ = 0;
};

// The accounts of every kind's targets, by server and user name, for the agent's life.
class ImapAccounts final : public SharedResource {
  public:
    std::shared_ptr<ImapAccount> account(const std::string& host, std::uint16_t port,
                                         const std::string& username);

  private:
    std::map<std::string, std::weak_ptr<ImapAccount>> accounts_;
};

// The agent's accounts, made when a kind first needs them.
ImapAccounts& imap_accounts(ProbeResources& resources);

}  // namespace mailcanary
