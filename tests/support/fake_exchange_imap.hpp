// An in-process IMAP server that behaves like Exchange Online (outlook.office365.com:993) where
// that matters to the agent, built from public transcripts (cited in the .cpp): its greeting and
// capabilities, no SPECIAL-USE (folders are found by their names: "Junk Email", "Deleted
// Items"), LIST without special-use flags, UIDPLUS, IDLE, "NO LOGIN failed." for any refused
// login, and its throttling replies as faults to switch on. Plain TCP: TLS is not what it shows.
// For unit tests only; the real Dovecot stands in for a server in the integration tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mailcanary::test {

class FakeExchangeImap {
  public:
    using Clock = std::chrono::steady_clock;

    struct Options {
        std::string username = "probe";
        std::string password = "s3cret";
        // Exchange Online lists MOVE after login; Exchange 2010 and 2013 servers do not, and
        // neither does this fake unless asked, so that removal goes by COPY, STORE and EXPUNGE.
        bool offer_move = false;
    };

    explicit FakeExchangeImap(Options options);
    FakeExchangeImap() : FakeExchangeImap(Options{}) {}
    ~FakeExchangeImap();
    FakeExchangeImap(const FakeExchangeImap&) = delete;
    FakeExchangeImap& operator=(const FakeExchangeImap&) = delete;

    std::uint16_t port() const;

    // Delivers a message made of `headers` (CRLF-terminated lines) into `folder`.
    void deliver(const std::string& folder, const std::string& headers);
    // The headers of the messages in `folder`, in UID order.
    std::vector<std::string> messages_in(const std::string& folder) const;

    // Faults: the next `count` logins, or the next `count` commands after a login, are answered
    // as Exchange throttles, with "Suggested Backoff Time: <hint> milliseconds".
    void throttle_logins(int count, int hint_ms);
    void throttle_commands(int count, int hint_ms);

    // The lines clients sent, over all sessions (LOGIN's password hidden).
    std::vector<std::string> received_lines() const;
    // When each LOGIN arrived.
    std::vector<Clock::time_point> login_times() const;
    // The most sessions that were open at once.
    int peak_sessions() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mailcanary::test
