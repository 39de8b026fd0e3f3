// Runs the IMAP client over a real connection: resolve, connect, TLS (SNI and certificate
// verification), login, then one command at a time and IDLE, every operation bounded by a
// deadline. Long-lived: the mailbox tracker keeps one per watched folder.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/transcript.hpp"
#include "protocols/endpoint.hpp"
#include "protocols/imap_dialog.hpp"

namespace mailcanary::imap {

class Session {
  public:
    using Clock = std::chrono::steady_clock;

    Session(boost::asio::any_io_executor executor, Transcript& transcript);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Connects and logs in. False, with failure() set, when that did not work by `deadline`.
    boost::asio::awaitable<bool> open(Endpoint endpoint, ClientOptions options,
                                      Clock::time_point deadline);
    // Runs one command to its tagged completion (NO and BAD included); empty, with failure()
    // set, when the session broke or the deadline passed: it is then unusable.
    boost::asio::awaitable<std::optional<Completion>> execute(std::string command,
                                                              Clock::time_point deadline);
    // IDLE (RFC 2177) until new mail is announced or `until` passes, then DONE. False, with
    // failure() set, when the session broke.
    boost::asio::awaitable<bool> idle(Clock::time_point until);
    // Ends an idle() in progress now, as if `until` had come; does nothing otherwise.
    void end_idle();
    // Cuts the connection at once; whatever is in progress ends with a failure.
    void close();

    const Failure& failure() const { return failure_; }
    const Client& client() const { return *client_; }
    Client& client() { return *client_; }

  private:
    struct Connection;

    // Performs actions until the client asks for something the caller decides on.
    boost::asio::awaitable<Action> drive(Action action, Clock::time_point deadline);
    boost::asio::awaitable<bool> handshake(const Endpoint& endpoint);
    Action broken(FailureReason reason, std::string detail);
    // Says DONE at `when` while idle() waits for the server.
    void send_done_at(Clock::time_point when);

    boost::asio::any_io_executor executor_;
    Transcript& transcript_;
    std::shared_ptr<Connection> connection_;
    std::unique_ptr<Client> client_;
    Failure failure_;
};

}  // namespace mailcanary::imap
