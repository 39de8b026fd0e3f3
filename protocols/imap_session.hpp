// Runs the IMAP client over a real connection (protocols/connection): resolve, connect, TLS (SNI
// and certificate verification), login, then one command at a time and IDLE, every operation
// bounded by a deadline. Long-lived: the mailbox tracker keeps one per watched folder; a probe may
// open one per run and record its phases.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/transcript.hpp"
#include "protocols/endpoint.hpp"
#include "protocols/imap_dialog.hpp"
#include "protocols/phase.hpp"
#include "protocols/run_metrics.hpp"

namespace mailcanary {
class Connection;
}

namespace mailcanary::imap {

class Session {
  public:
    using Clock = std::chrono::steady_clock;

    // With `metrics`, the session records what an SMTP session does: phase durations (resolve,
    // connect, tls_handshake, greeting, capability, starttls, auth, and those given to
    // execute()), the certificate's expiry, the TLS version and cipher. The transcript and the
    // metrics must outlive the session.
    Session(boost::asio::any_io_executor executor, Transcript& transcript,
            RunMetrics* metrics = nullptr);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Connects and logs in. False, with failure() set, when that did not work by `deadline`.
    boost::asio::awaitable<bool> open(Endpoint endpoint, ClientOptions options,
                                      Clock::time_point deadline);
    // Runs one command to its tagged completion (NO and BAD included), timed as `phase` when
    // given; empty, with failure() set, when the session broke or the deadline passed: it is
    // then unusable.
    boost::asio::awaitable<std::optional<Completion>> execute(
        std::string command, Clock::time_point deadline, std::optional<Phase> phase = std::nullopt);
    // LOGOUT (phase logout): the server says BYE and completes it; then the connection is
    // closed, without waiting for the server to close it. False, with failure() set, when the
    // completion was not OK or did not come by `deadline`.
    boost::asio::awaitable<bool> logout(Clock::time_point deadline);
    // IDLE (RFC 2177) until new mail is announced or `until` passes, then DONE. False, with
    // failure() set, when the session broke.
    boost::asio::awaitable<bool> idle(Clock::time_point until);
    // Ends an idle() in progress now, as if `until` had come; does nothing otherwise.
    void end_idle();
    // Cuts the connection at once; whatever is in progress ends with a failure.
    void close();

    // Why the session failed: the reasons of docs/metrics.md, as an SMTP session gives them
    // (dns, connect_refused, timeout, closed, tls_cert_expired, starttls_rejected,
    // auth_rejected, greeting_rejected, protocol, ...).
    const Failure& failure() const { return failure_; }
    const Client& client() const { return *client_; }
    Client& client() { return *client_; }

  private:
    // What idle() shares with the timer that says DONE, whose handler may run after idle() (or
    // the session) is gone.
    struct Idle {
        explicit Idle(const boost::asio::any_io_executor& executor) : timer(executor) {}
        boost::asio::steady_timer timer;
        bool active = false;  // idle() is waiting for the server
        bool done_sent = false;
        bool starting = false;       // IDLE sent, its "+" not yet in
        bool end_requested = false;  // end_idle() came while starting: DONE at once
    };

    // Performs actions until the client asks for something the caller decides on; operations
    // outside the login sequence are timed as `phase`.
    boost::asio::awaitable<Action> drive(Action action, Clock::time_point deadline,
                                         std::optional<Phase> phase);
    Action broken(const Failure& failure);
    // Says DONE at `when` while idle() waits for the server.
    void send_done_at(Clock::time_point when);

    boost::asio::any_io_executor executor_;
    Transcript& transcript_;
    RunMetrics* metrics_;
    Endpoint endpoint_;
    std::shared_ptr<Connection> connection_;
    std::shared_ptr<Idle> idle_;
    std::unique_ptr<Client> client_;
    Failure failure_;
};

}  // namespace mailcanary::imap
