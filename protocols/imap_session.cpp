#include "protocols/imap_session.hpp"

#include <boost/asio/error.hpp>

#include "protocols/connection.hpp"

namespace mailcanary::imap {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// How long a server gets to end IDLE after DONE.
constexpr auto kIdleDoneGrace = std::chrono::seconds(30);

}  // namespace

Session::Session(asio::any_io_executor executor, Transcript& transcript, RunMetrics* metrics)
    : executor_(std::move(executor)),
      transcript_(transcript),
      metrics_(metrics),
      idle_(std::make_shared<Idle>(executor_)) {}

Session::~Session() { close(); }

void Session::close() {
    idle_->timer.cancel();
    if (connection_) connection_->close();
}

Action Session::broken(const Failure& failure) {
    failure_ = {failure.reason, printable(failure.detail)};
    transcript_.note("failed: " + std::string(to_string(failure_.reason)) + ": " + failure_.detail);
    if (connection_) connection_->enter(std::nullopt);  // the failed phase ends here
    close();
    return {Action::Kind::failed, {}};
}

asio::awaitable<bool> Session::open(Endpoint endpoint, ClientOptions options,
                                    Clock::time_point deadline) {
    connection_ = Connection::create(executor_, transcript_, metrics_);
    client_ = std::make_unique<Client>(std::move(options), transcript_);
    endpoint_ = std::move(endpoint);
    failure_ = {};

    connection_->set_deadline(deadline);
    error_code ec;
    co_await connection_->connect(endpoint_, ec);
    if (ec) {
        broken(connection_->failure(ec));
        co_return false;
    }
    const Action action = co_await drive(client_->start(), deadline, std::nullopt);
    if (action.kind == Action::Kind::ready) co_return true;
    if (action.kind != Action::Kind::failed) {
        broken({FailureReason::protocol, "login did not finish"});
    }
    co_return false;
}

asio::awaitable<Action> Session::drive(Action action, Clock::time_point deadline,
                                       std::optional<Phase> phase) {
    if (!connection_ || connection_->closed()) {
        co_return broken({FailureReason::closed, "the session is closed"});
    }
    const auto connection = connection_;  // close() may run while this waits
    connection->set_deadline(deadline);
    error_code ec;
    while (action.kind == Action::Kind::read || action.kind == Action::Kind::write ||
           action.kind == Action::Kind::start_tls) {
        const auto login_phase = client_->phase();
        connection->enter(login_phase ? login_phase : phase);
        if (action.kind == Action::Kind::write) {
            co_await connection->write(action.bytes, ec);
            if (!ec) action = client_->on_written();
        } else if (action.kind == Action::Kind::start_tls) {
            co_await connection->start_tls(endpoint_, ec);
            if (!ec) action = client_->on_tls_established();
        } else {
            const std::string_view received = co_await connection->read(ec);
            if (ec == asio::error::eof && !connection->timed_out()) {
                ec.clear();
                action = client_->on_closed();
            } else if (!ec) {
                action = client_->on_bytes(received);
            }
        }
        if (ec) co_return broken(connection->failure(ec));
    }
    connection->enter(std::nullopt);
    connection->clear_deadline();
    if (action.kind == Action::Kind::failed) {
        failure_ = *client_->failure();  // the client noted it in the transcript
        close();
    }
    co_return action;
}

asio::awaitable<std::optional<Completion>> Session::execute(std::string command,
                                                            Clock::time_point deadline,
                                                            std::optional<Phase> phase) {
    if (!client_ || !client_->ready()) {
        broken({FailureReason::protocol, "command on a session that is not ready"});
        co_return std::nullopt;
    }
    const Action action = co_await drive(client_->command(command), deadline, phase);
    if (action.kind != Action::Kind::completed) {
        if (action.kind != Action::Kind::failed) {
            broken({FailureReason::protocol, "the server did not complete " + command});
        }
        co_return std::nullopt;
    }
    co_return client_->completion();
}

asio::awaitable<bool> Session::logout(Clock::time_point deadline) {
    const auto completion = co_await execute("LOGOUT", deadline, Phase::logout);
    if (!completion) co_return false;
    // The server closes the connection after its OK: nothing is left to wait for.
    close();
    if (completion->ok()) co_return true;
    broken({FailureReason::protocol, "LOGOUT: " + completion->describe()});
    co_return false;
}

void Session::send_done_at(Clock::time_point when) {
    // Re-arming cancels the earlier wait, whose handler then does nothing.
    idle_->timer.expires_at(when);
    idle_->timer.async_wait([this, weak = std::weak_ptr(idle_)](error_code ec) {
        // Only the session owns its idle state: while that lives, so does the session.
        const auto idle = weak.lock();
        if (ec || !idle || !idle->active || idle->done_sent || connection_->closed()) return;
        idle->done_sent = true;
        connection_->write_detached(std::string(client_->stop_idling().bytes));
    });
}

void Session::end_idle() {
    if (idle_->starting) idle_->end_requested = true;
    if (connection_ && idle_->active && !idle_->done_sent && !connection_->closed()) {
        send_done_at(Clock::now());
    }
}

asio::awaitable<bool> Session::idle(Clock::time_point until) {
    if (!client_ || !client_->ready()) {
        broken({FailureReason::protocol, "IDLE on a session that is not ready"});
        co_return false;
    }
    const auto connection = connection_;
    const auto deadline = until + kIdleDoneGrace;
    // An end_idle() before the server's "+" (a run's message now on its way) is not lost.
    idle_->starting = true;
    idle_->end_requested = false;
    Action action = co_await drive(client_->idle(), deadline, std::nullopt);
    idle_->starting = false;
    if (action.kind == Action::Kind::completed) {
        // A server may refuse IDLE (NO) despite advertising it: poll instead next time.
        co_return !connection->closed();
    }
    if (action.kind != Action::Kind::idling) co_return false;

    // At `until` the timer says DONE while the read below is still waiting for the server (a
    // TLS stream allows one read and one write at once).
    idle_->active = true;
    idle_->done_sent = false;
    send_done_at(idle_->end_requested ? Clock::now() : until);
    while (action.kind == Action::Kind::idling) {
        if (client_->take_mailbox_changed() && !idle_->done_sent) {
            idle_->timer.cancel();
            idle_->done_sent = true;
            action = co_await drive(client_->stop_idling(), deadline, std::nullopt);
            continue;
        }
        action = co_await drive({Action::Kind::read, {}}, deadline, std::nullopt);
    }
    idle_->active = false;
    idle_->timer.cancel();
    co_return action.kind == Action::Kind::completed;
}

}  // namespace mailcanary::imap
