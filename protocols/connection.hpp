// The client end of one SMTP or IMAP connection, as both session drivers use it: the host name
// resolved by the agent's resolver (asynchronously, on the loop), each address tried in order,
// STARTTLS or implicit TLS with SNI and host-name verification, reads timed by their arrival, and
// one deadline bounding every operation. A failed operation is classified into a reason of
// docs/metrics.md; phases and certificate facts go into the run's metrics, when it has any. The
// protocol stays with the drivers.
#pragma once

#include <utility>

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/stop_signal.hpp"
#include "common/transcript.hpp"
#include "protocols/dns_resolver.hpp"
#include "protocols/endpoint.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase_clock.hpp"

namespace mailcanary {

// Shared: the deadline's timer (and a detached write) may act after the driver moved on, and
// then must find it gone or still whole. Single-threaded, like the agent's event loop.
class Connection : public std::enable_shared_from_this<Connection> {
  public:
    using Clock = std::chrono::steady_clock;

    // `metrics` may be null: nothing is recorded then. The transcript and metrics must outlive
    // every operation.
    static std::shared_ptr<Connection> create(const boost::asio::any_io_executor& executor,
                                              Transcript& transcript, RunMetrics* metrics);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Bounds every operation from now on: the one pending at `deadline` is interrupted, and
    // none starts after it.
    void set_deadline(Clock::time_point deadline);
    // No deadline until the next set_deadline(): between the commands of a long-lived session.
    void clear_deadline();
    // True once the deadline in force has cut an operation short (or refused one).
    bool timed_out() const { return timed_out_; }
    // Fails the pending operation, and every one until the next set_deadline(), with
    // operation_aborted: a stop request, say.
    void interrupt();
    // Closes the socket: the pending operation and every later one fail.
    void close();
    bool closed() const { return closed_; }

    // The phase the next operations belong to, timed into the metrics; none: no phase.
    void enter(std::optional<Phase> phase) { clock_.enter(phase); }

    // Resolves the endpoint's host, then connects to its addresses in order (phases resolve and
    // connect). Call set_deadline() first.
    boost::asio::awaitable<void> connect(Endpoint endpoint, boost::system::error_code& ec);
    // The TLS client handshake (phase tls_handshake): SNI, verification against the endpoint's
    // host or server_name, certificate facts into the metrics even when verification fails. It
    // fails for the certificate (tls_cert_*) only when verification refused it; anything else
    // (the server's alert, a close) is tls_handshake, insecure_skip_verify or not.
    boost::asio::awaitable<void> start_tls(Endpoint endpoint, boost::system::error_code& ec);
    boost::asio::awaitable<void> write(std::string_view bytes, boost::system::error_code& ec);
    // What the server sent, valid until the next read; eof when it closed the connection.
    boost::asio::awaitable<std::string_view> read(boost::system::error_code& ec);
    // When what the last read returned arrived (the kernel's receive time, for plaintext).
    Clock::time_point last_arrival() const { return last_arrival_; }
    // Writes without waiting, beside a pending read (IMAP's DONE while IDLE waits); the result
    // shows in that read, if at all.
    void write_detached(std::string bytes);

    // What the operation that failed with `ec` means for the run, in the phase it failed in.
    Failure failure(const boost::system::error_code& ec);

  private:
    Connection(const boost::asio::any_io_executor& executor, Transcript& transcript,
               RunMetrics* metrics);
    // True, with `ec` set, when no operation may start: closed, past the deadline, interrupted.
    bool refuse(boost::system::error_code& ec);

    Transcript& transcript_;
    RunMetrics* metrics_;
    PhaseClock clock_;
    boost::asio::ip::tcp::socket socket_;
    std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    boost::asio::steady_timer watchdog_;
    Clock::time_point deadline_ = Clock::time_point::max();
    bool timed_out_ = false;
    bool interrupted_ = false;
    bool closed_ = false;
    std::string lookup_failure_;  // the detail of a dns failure
    DnsCancel lookup_cancel_;     // the lookup in progress, cut short by interrupt()
    // Set when verification refused the server's certificate: X509_V_ERR_*.
    std::optional<int> rejected_certificate_;
    Clock::time_point last_arrival_;
    std::array<char, std::size_t{16} * 1024> buffer_{};
};

// Interrupts a connection when a stop is requested, for as long as the guard lives.
class InterruptOnStop {
  public:
    InterruptOnStop(StopSignal& stop, const std::shared_ptr<Connection>& connection);
    ~InterruptOnStop() { stop_.clear(); }
    InterruptOnStop(const InterruptOnStop&) = delete;
    InterruptOnStop& operator=(const InterruptOnStop&) = delete;

  private:
    StopSignal& stop_;
};

}  // namespace mailcanary
