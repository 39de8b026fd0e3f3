#include "protocols/imap_session.hpp"

#include <openssl/ssl.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocols/network.hpp"
#include "protocols/tls_client.hpp"

namespace mailcanary::imap {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

// How long a server gets to end IDLE after DONE.
constexpr auto kIdleDoneGrace = std::chrono::seconds(30);

}  // namespace

// Shared with the timers, whose handlers may run after the coroutine has moved on.
struct Session::Connection {
    explicit Connection(const asio::any_io_executor& executor)
        : socket(executor), watchdog(executor), idle_timer(executor) {}

    void interrupt() {
        error_code ignored;
        socket.cancel(ignored);
    }

    // The one timer that bounds the operation in progress: it cuts it short at `deadline`.
    void arm_watchdog(Clock::time_point new_deadline, const std::shared_ptr<Connection>& self) {
        timed_out = Clock::now() >= new_deadline;
        watchdog.expires_at(new_deadline);
        watchdog.async_wait([weak = std::weak_ptr(self)](error_code ec) {
            if (ec) return;
            if (auto connection = weak.lock()) {
                connection->timed_out = true;
                connection->interrupt();
            }
        });
    }

    asio::awaitable<std::size_t> read_some(error_code& ec) {
        request_quick_ack(socket);
        auto token = asio::redirect_error(asio::use_awaitable, ec);
        if (tls) co_return co_await tls->async_read_some(asio::buffer(buffer), token);
        co_return co_await socket.async_read_some(asio::buffer(buffer), token);
    }

    asio::awaitable<void> write_all(std::string_view bytes, error_code& ec) {
        auto token = asio::redirect_error(asio::use_awaitable, ec);
        if (tls) {
            co_await asio::async_write(*tls, asio::buffer(bytes), token);
        } else {
            co_await asio::async_write(socket, asio::buffer(bytes), token);
        }
    }

    tcp::socket socket;
    std::optional<asio::ssl::stream<tcp::socket&>> tls;
    asio::steady_timer watchdog;
    asio::steady_timer idle_timer;
    bool timed_out = false;
    bool closed = false;
    bool idle_active = false;  // idle() is waiting for the server
    bool done_sent = false;
    std::array<char, 16 * 1024> buffer{};
};

Session::Session(asio::any_io_executor executor, Transcript& transcript)
    : executor_(std::move(executor)), transcript_(transcript) {}

Session::~Session() { close(); }

void Session::close() {
    if (!connection_) return;
    connection_->closed = true;
    error_code ignored;
    connection_->watchdog.cancel();
    connection_->idle_timer.cancel();
    connection_->socket.close(ignored);
}

Action Session::broken(FailureReason reason, std::string detail) {
    failure_ = Failure{reason, printable(detail)};
    transcript_.note("failed: " + std::string(to_string(reason)) + ": " + failure_.detail);
    close();
    return {Action::Kind::failed, {}};
}

asio::awaitable<bool> Session::open(Endpoint endpoint, ClientOptions options,
                                    Clock::time_point deadline) {
    connection_ = std::make_shared<Connection>(executor_);
    client_ = std::make_unique<Client>(std::move(options), transcript_);
    failure_ = {};

    const Lookup lookup = co_await resolve(endpoint.host, endpoint.port, deadline);
    if (!lookup.error.empty()) {
        broken(FailureReason::imap_connect, "resolving " + endpoint.host + ": " + lookup.error);
        co_return false;
    }
    connection_->arm_watchdog(deadline, connection_);
    error_code ec;
    co_await connect_in_order(connection_->socket, lookup.endpoints, transcript_, deadline, ec);
    if (!ec && (connection_->timed_out || connection_->closed)) ec = asio::error::timed_out;
    if (ec) {
        broken(FailureReason::imap_connect, "connecting to " + endpoint.host + ":" +
                                                std::to_string(endpoint.port) + ": " +
                                                ec.message());
        co_return false;
    }

    Action action = client_->start();
    while (action.kind == Action::Kind::start_tls || action.kind == Action::Kind::read ||
           action.kind == Action::Kind::write) {
        if (action.kind == Action::Kind::start_tls) {
            if (!co_await handshake(endpoint)) co_return false;
            action = client_->on_tls_established();
        }
        action = co_await drive(action, deadline);
    }
    if (action.kind == Action::Kind::ready) co_return true;
    if (action.kind == Action::Kind::failed && client_->failure()) failure_ = *client_->failure();
    if (failure_.detail.empty()) failure_ = {FailureReason::imap_protocol, "login did not finish"};
    close();
    co_return false;
}

asio::awaitable<bool> Session::handshake(const Endpoint& endpoint) {
    Connection& connection = *connection_;
    if (!endpoint.tls_context) {
        broken(FailureReason::imap_tls, "no TLS context");
        co_return false;
    }
    connection.tls.emplace(connection.socket, *endpoint.tls_context);
    SSL* ssl = connection.tls->native_handle();
    if (!tls::prepare_connection(ssl, endpoint.host, endpoint.tls_options)) {
        broken(FailureReason::imap_tls,
               "OpenSSL refuses the name to verify the certificate against");
        co_return false;
    }
    connection.tls->set_verify_callback(
        [skip = endpoint.tls_options.insecure_skip_verify](
            bool preverified, asio::ssl::verify_context&) { return preverified || skip; });
    error_code ec;
    co_await connection.tls->async_handshake(asio::ssl::stream_base::client,
                                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        const bool certificate =
            tls::classify_handshake_failure(ssl) != FailureReason::tls_handshake;
        broken(FailureReason::imap_tls, connection.timed_out ? "timed out during the TLS handshake"
                                        : certificate
                                            ? "certificate: " + tls::describe_verify_result(ssl)
                                            : "TLS handshake: " + ec.message());
        co_return false;
    }
    transcript_.note(std::string("TLS established: ") + SSL_get_version(ssl) + " " +
                     SSL_get_cipher_name(ssl));
    co_return true;
}

asio::awaitable<Action> Session::drive(Action action, Clock::time_point deadline) {
    if (!connection_ || connection_->closed) {
        co_return broken(FailureReason::imap_connect, "the session is closed");
    }
    const auto connection = connection_;  // close() may run while this waits
    connection->arm_watchdog(deadline, connection);
    error_code ec;
    while (action.kind == Action::Kind::read || action.kind == Action::Kind::write) {
        if (connection->timed_out) break;
        if (action.kind == Action::Kind::write) {
            co_await connection->write_all(action.bytes, ec);
            if (ec) break;
            action = client_->on_written();
            if (action.kind == Action::Kind::idling) co_return action;
            continue;
        }
        const std::size_t received = co_await connection->read_some(ec);
        if (connection->closed) co_return broken(FailureReason::imap_connect, "session closed");
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
            action = client_->on_closed();
            ec.clear();
            break;
        }
        if (ec) break;
        action = client_->on_bytes({connection->buffer.data(), received});
    }
    connection->watchdog.cancel();
    if (connection->timed_out) co_return broken(FailureReason::imap_connect, "timed out");
    if (ec) co_return broken(FailureReason::imap_connect, ec.message());
    if (action.kind == Action::Kind::failed && client_->failure()) {
        failure_ = *client_->failure();
        close();
    }
    co_return action;
}

asio::awaitable<std::optional<Completion>> Session::execute(std::string command,
                                                            Clock::time_point deadline) {
    if (!client_ || !client_->ready()) {
        broken(FailureReason::imap_protocol, "command on a session that is not ready");
        co_return std::nullopt;
    }
    const Action action = co_await drive(client_->command(command), deadline);
    if (action.kind != Action::Kind::completed) {
        if (action.kind != Action::Kind::failed) {
            broken(FailureReason::imap_protocol, "the server did not complete " + command);
        }
        co_return std::nullopt;
    }
    co_return client_->completion();
}

void Session::send_done_at(Clock::time_point when) {
    // Re-arming cancels the earlier wait, whose handler then does nothing.
    connection_->idle_timer.expires_at(when);
    connection_->idle_timer.async_wait([this, weak = std::weak_ptr(connection_)](error_code ec) {
        auto alive = weak.lock();
        if (ec || !alive || !alive->idle_active || alive->done_sent || alive->closed) return;
        alive->done_sent = true;
        auto bytes = std::make_shared<std::string>(client_->stop_idling().bytes);
        const auto written = [bytes](error_code, std::size_t) {};
        if (alive->tls) {
            asio::async_write(*alive->tls, asio::buffer(*bytes), written);
        } else {
            asio::async_write(alive->socket, asio::buffer(*bytes), written);
        }
    });
}

void Session::end_idle() {
    if (connection_ && connection_->idle_active && !connection_->done_sent &&
        !connection_->closed) {
        send_done_at(Clock::now());
    }
}

asio::awaitable<bool> Session::idle(Clock::time_point until) {
    if (!client_ || !client_->ready()) {
        broken(FailureReason::imap_protocol, "IDLE on a session that is not ready");
        co_return false;
    }
    const auto connection = connection_;
    const auto deadline = until + kIdleDoneGrace;
    Action action = co_await drive(client_->idle(), deadline);
    if (action.kind == Action::Kind::completed) {
        // A server may refuse IDLE (NO) despite advertising it: poll instead next time.
        co_return !connection->closed;
    }
    if (action.kind != Action::Kind::idling) co_return false;

    // At `until` the timer says DONE while the read below is still waiting for the server (a
    // TLS stream allows one read and one write at once). The flags live in the connection: the
    // timer's handler may run after this coroutine has left, and must then do nothing.
    connection->idle_active = true;
    connection->done_sent = false;
    send_done_at(until);
    while (action.kind == Action::Kind::idling) {
        if (client_->take_mailbox_changed() && !connection->done_sent) {
            connection->idle_timer.cancel();
            connection->done_sent = true;
            action = co_await drive(client_->stop_idling(), deadline);
            continue;
        }
        action = co_await drive({Action::Kind::read, {}}, deadline);
    }
    connection->idle_active = false;
    connection->idle_timer.cancel();
    co_return action.kind == Action::Kind::completed;
}

}  // namespace mailcanary::imap
