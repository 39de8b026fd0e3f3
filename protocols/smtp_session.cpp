#include "protocols/smtp_session.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <functional>
#include <optional>

#include "protocols/network.hpp"
#include "protocols/tls_client.hpp"

namespace mailcanary::smtp {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kGoodbyeGrace = std::chrono::milliseconds(300);
// The run's result is known once QUIT is sent: a server slow to answer it gets this long, not
// the rest of the run's timeout.
constexpr auto kQuitGrace = std::chrono::seconds(1);

// Shared with the watchdog and the stop handler, which may run after the coroutine has moved on.
struct Connection {
    explicit Connection(const asio::any_io_executor& executor)
        : socket(executor), watchdog(executor) {}

    // Interrupts whatever operation is pending; the driver then sees why in the flags.
    void interrupt() {
        error_code ignored;
        socket.cancel(ignored);
    }

    // True once the deadline in force has passed. Checked before every operation: the watchdog
    // fires once, and an operation started after it fired would have no bound at all.
    bool expired() {
        if (!timed_out && Clock::now() >= deadline) timed_out = true;
        return timed_out;
    }

    // (Re)arms the one timer that bounds every operation of the run.
    void arm_watchdog(Clock::time_point new_deadline, const std::shared_ptr<Connection>& self) {
        timed_out = false;
        deadline = new_deadline;
        watchdog.expires_at(deadline);
        watchdog.async_wait([weak = std::weak_ptr(self)](error_code ec) {
            if (ec) return;  // re-armed or cancelled
            if (auto connection = weak.lock()) {
                connection->timed_out = true;
                connection->interrupt();
            }
        });
    }

    tcp::socket socket;
    std::optional<asio::ssl::stream<tcp::socket&>> tls;
    asio::steady_timer watchdog;
    bool timed_out = false;
    Clock::time_point deadline;
    std::array<char, 4096> buffer{};
};

// Accumulates wall time per phase; a phase entered twice (EHLO before and after STARTTLS) adds up.
// A phase that ends with a reply ends when the reply arrived (arrived()), not when the loop got
// to it; the next starts when the agent acts. The moments in between, when the agent's loop was
// busy elsewhere, are in no phase (they are in the run's duration).
class PhaseClock {
  public:
    explicit PhaseClock(RunMetrics& metrics) : metrics_(metrics) {}

    // What was just read arrived at `at`: the end of the current phase if the next enter() or
    // stop() leaves it.
    void arrived(Clock::time_point at) { arrival_ = at; }

    void enter(Phase phase) {
        const auto end = end_time();
        if (current_ && *current_ != phase) {
            metrics_.add_phase(*current_, end - since_);
            since_ = Clock::now();
        } else if (!current_) {
            since_ = Clock::now();
        }
        current_ = phase;
    }

    void stop() {
        const auto end = end_time();
        if (current_) metrics_.add_phase(*current_, end - since_);
        current_.reset();
    }

  private:
    // The arrival of the last read, if nothing happened since, within the phase; else now.
    Clock::time_point end_time() {
        const auto now = Clock::now();
        const auto arrival = std::exchange(arrival_, std::nullopt);
        if (!arrival || !current_) return now;
        return std::clamp(*arrival, since_, now);
    }

    RunMetrics& metrics_;
    std::optional<Phase> current_;
    Clock::time_point since_;
    std::optional<Clock::time_point> arrival_;
};

FailureReason timeout_reason(Phase phase) {
    switch (phase) {
        case Phase::resolve:
            return FailureReason::dns;
        case Phase::connect:
            return FailureReason::connect_timeout;
        case Phase::banner:
            return FailureReason::banner_timeout;
        default:
            return FailureReason::timeout;
    }
}

bool is_end_of_stream(const error_code& ec) {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

// Turns a failed operation into the run's outcome.
Outcome io_failure(const Connection& connection, Phase phase, const error_code& ec) {
    if (connection.timed_out) {
        return Outcome::failed(timeout_reason(phase),
                               "timed out during " + std::string(to_string(phase)));
    }
    if (phase == Phase::connect && ec == asio::error::connection_refused) {
        return Outcome::failed(FailureReason::connect_refused, ec.message());
    }
    return Outcome::failed(FailureReason::network,
                           std::string(to_string(phase)) + ": " + ec.message());
}

asio::awaitable<void> handshake(Connection& connection, const Endpoint& endpoint,
                                const SessionRun& run, error_code& ec) {
    connection.tls.emplace(connection.socket, *endpoint.tls_context);
    SSL* ssl = connection.tls->native_handle();
    if (!tls::prepare_connection(ssl, endpoint.host, endpoint.tls_options)) {
        run.transcript.note("OpenSSL refuses the name to verify the certificate against");
        ec = asio::error::invalid_argument;
        co_return;
    }
    connection.tls->set_verify_callback(
        [&metrics = run.metrics, skip = endpoint.tls_options.insecure_skip_verify](
            bool preverified, asio::ssl::verify_context& context) {
            const auto not_after = tls::earliest_not_after(context.native_handle());
            if (not_after && (!metrics.cert_not_after || *not_after < *metrics.cert_not_after)) {
                metrics.cert_not_after = not_after;
            }
            return preverified || skip;
        });
    co_await connection.tls->async_handshake(asio::ssl::stream_base::client,
                                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    if (auto verified = tls::earliest_not_after_verified(ssl))
        run.metrics.cert_not_after = verified;
    run.metrics.tls_version = SSL_get_version(ssl);
    run.metrics.tls_cipher = SSL_get_cipher_name(ssl);
    run.transcript.note("TLS established: " + *run.metrics.tls_version + " " +
                        *run.metrics.tls_cipher);
}

// Reads what is there; `arrival` is when it arrived (plaintext: the kernel's receive time; over
// TLS, which decrypts inside the stream, when the read completed).
asio::awaitable<std::size_t> read_some(Connection& connection, Clock::time_point& arrival,
                                       error_code& ec) {
    request_quick_ack(connection.socket);
    auto buffer = asio::buffer(connection.buffer);
    if (!connection.tls) {
        co_return co_await read_with_arrival(connection.socket, buffer, arrival, ec);
    }
    const std::size_t received = co_await connection.tls->async_read_some(
        buffer, asio::redirect_error(asio::use_awaitable, ec));
    arrival = Clock::now();
    co_return received;
}

asio::awaitable<void> write_all(Connection& connection, std::string_view bytes, error_code& ec) {
    auto buffer = asio::buffer(bytes);
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    if (connection.tls) {
        co_await asio::async_write(*connection.tls, buffer, token);
    } else {
        co_await asio::async_write(connection.socket, buffer, token);
    }
}

// On shutdown, a session that is in step says goodbye before it is cut.
asio::awaitable<void> say_goodbye(const std::shared_ptr<Connection>& connection,
                                  Transcript& transcript) {
    connection->arm_watchdog(Clock::now() + kGoodbyeGrace, connection);
    transcript.client("QUIT");
    transcript.note("run cancelled: the agent is stopping or the target was removed");
    error_code ignored;
    co_await write_all(*connection, "QUIT\r\n", ignored);
}

}  // namespace

asio::awaitable<Outcome> run_dialog(const Endpoint& endpoint, SessionRun run, Dialog& dialog) {
    auto connection = std::make_shared<Connection>(co_await asio::this_coro::executor);
    connection->arm_watchdog(run.deadline, connection);
    run.stop.on_request([weak = std::weak_ptr(connection)] {
        if (auto alive = weak.lock()) alive->interrupt();
    });
    struct StopHandlerReset {
        StopSignal& stop;
        ~StopHandlerReset() { stop.clear(); }
    } reset_on_exit{run.stop};

    PhaseClock clock(run.metrics);
    const auto started = Clock::now();
    error_code ec;
    Outcome outcome;
    const auto cancelled = [&] { return run.stop.requested(); };

    clock.enter(Phase::resolve);
    const Lookup lookup = co_await resolve(endpoint.host, endpoint.port, run.deadline);
    if (cancelled()) co_return Outcome::stopped();
    if (!lookup.error.empty()) {
        clock.stop();
        run.transcript.note("cannot resolve " + endpoint.host + ": " + lookup.error);
        co_return Outcome::failed(FailureReason::dns,
                                  "resolving " + endpoint.host + ": " + lookup.error);
    }

    clock.enter(Phase::connect);
    co_await connect_in_order(connection->socket, lookup.endpoints, run.transcript, run.deadline,
                              ec);
    if (cancelled()) co_return Outcome::stopped();
    if (!ec && connection->expired()) ec = asio::error::timed_out;
    if (ec) {
        clock.stop();
        connection->expired();  // a deadline passed between tries counts as a timeout too
        co_return io_failure(*connection, Phase::connect, ec);
    }
    request_arrival_times(connection->socket);  // replies are timed by their arrival

    Action action = dialog.start();
    bool quit_sent = false;
    while (action.kind != Action::Kind::done) {
        clock.enter(action.phase);
        if (action.phase == Phase::quit && !quit_sent) {
            quit_sent = true;
            connection->arm_watchdog(std::min(run.deadline, Clock::now() + kQuitGrace), connection);
        }
        if (connection->expired()) {
            ec = asio::error::timed_out;
        } else {
            switch (action.kind) {
                case Action::Kind::write:
                    co_await write_all(*connection, action.bytes, ec);
                    if (!ec) action = dialog.on_written();
                    break;
                case Action::Kind::read: {
                    Clock::time_point arrival;
                    const std::size_t received = co_await read_some(*connection, arrival, ec);
                    if (!ec) {
                        clock.arrived(arrival);
                        action = dialog.on_bytes({connection->buffer.data(), received});
                        if (dialog.message_accepted() && !run.metrics.message_accepted_at) {
                            // The round trip is timed from here.
                            run.metrics.message_accepted_at = std::max(arrival, started);
                            run.metrics.submission = *run.metrics.message_accepted_at - started;
                        }
                    } else if (is_end_of_stream(ec) && !connection->timed_out) {
                        ec.clear();
                        action = dialog.on_closed();
                    }
                    break;
                }
                case Action::Kind::start_tls:
                    co_await handshake(*connection, endpoint, run, ec);
                    if (!ec) action = dialog.on_tls_established();
                    break;
                case Action::Kind::done:
                    break;
            }
        }
        const bool interrupted = connection->timed_out || cancelled();
        if (!ec && interrupted && action.kind != Action::Kind::done) {
            ec = asio::error::operation_aborted;
        }
        if (!ec) continue;

        if (cancelled()) {
            if (dialog.can_quit() && !connection->timed_out) {
                co_await say_goodbye(connection, run.transcript);
            }
            co_return Outcome::stopped();
        }
        // A failure found by the dialog stands; I/O errors during its polite QUIT don't matter.
        if (dialog.failure()) break;
        // Everything that mattered was answered: a slow or rude goodbye is noted, not a failure.
        if (quit_sent) {
            run.transcript.note("no clean answer to QUIT (" +
                                std::string(connection->timed_out ? "timed out" : ec.message()) +
                                "); the run's result stands");
            break;
        }
        if (action.kind == Action::Kind::start_tls && !connection->timed_out) {
            SSL* ssl = connection->tls->native_handle();
            const FailureReason reason = tls::classify_handshake_failure(ssl);
            outcome =
                Outcome::failed(reason, reason == FailureReason::tls_handshake
                                            ? "TLS handshake: " + ec.message()
                                            : "certificate: " + tls::describe_verify_result(ssl));
        } else {
            outcome = io_failure(*connection, action.phase, ec);
        }
        run.transcript.note("failed: " + std::string(to_string(*outcome.failure)) + ": " +
                            outcome.detail);
        break;
    }
    clock.stop();
    connection->watchdog.cancel();

    for (const auto& record : dialog.replies()) {
        run.metrics.replies.emplace_back(record.command, record.code);
    }
    if (dialog.failure()) outcome = Outcome::failed(*dialog.failure(), dialog.failure_detail());
    co_return outcome;
}

}  // namespace mailcanary::smtp
