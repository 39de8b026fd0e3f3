#include "protocols/connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocols/network.hpp"
#include "protocols/tls_client.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

FailureReason timeout_reason(std::optional<Phase> phase) {
    if (!phase) return FailureReason::timeout;
    switch (*phase) {
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

}  // namespace

std::shared_ptr<Connection> Connection::create(const asio::any_io_executor& executor,
                                               Transcript& transcript, RunMetrics* metrics) {
    return std::shared_ptr<Connection>(new Connection(executor, transcript, metrics));
}

Connection::Connection(const asio::any_io_executor& executor, Transcript& transcript,
                       RunMetrics* metrics)
    : transcript_(transcript),
      metrics_(metrics),
      clock_(metrics),
      socket_(executor),
      watchdog_(executor) {}

void Connection::set_deadline(Clock::time_point deadline) {
    deadline_ = deadline;
    timed_out_ = false;
    interrupted_ = false;
    // Re-arming cancels the earlier wait, whose handler then does nothing.
    watchdog_.expires_at(deadline);
    watchdog_.async_wait([weak = weak_from_this()](error_code ec) {
        if (ec) return;
        if (auto connection = weak.lock()) {
            connection->timed_out_ = true;
            connection->interrupt();
        }
    });
}

void Connection::clear_deadline() {
    deadline_ = Clock::time_point::max();
    watchdog_.cancel();
}

void Connection::interrupt() {
    interrupted_ = true;
    lookup_cancel_.cancel();
    error_code ignored;
    socket_.cancel(ignored);
}

void Connection::close() {
    closed_ = true;
    watchdog_.cancel();
    error_code ignored;
    socket_.close(ignored);
}

bool Connection::refuse(error_code& ec) {
    // The watchdog fires once: an operation started after it fired would have no bound at all.
    if (!timed_out_ && Clock::now() >= deadline_) timed_out_ = true;
    if (closed_) {
        ec = asio::error::bad_descriptor;
    } else if (timed_out_) {
        ec = asio::error::timed_out;
    } else if (interrupted_) {
        ec = asio::error::operation_aborted;
    } else {
        return false;
    }
    return true;
}

asio::awaitable<void> Connection::connect(Endpoint endpoint, error_code& ec) {
    enter(Phase::resolve);
    if (refuse(ec)) co_return;
    lookup_cancel_ = DnsCancel();
    const AddressLookup lookup = co_await resolve(endpoint, deadline_, lookup_cancel_);
    for (const auto& note : lookup.notes) transcript_.note("dns: " + note);
    if (!lookup.error.empty()) {
        lookup_failure_ = "resolving " + endpoint.host + ": " + lookup.error;
        transcript_.note("cannot resolve " + endpoint.host + ": " + lookup.error);
        ec = asio::error::host_not_found;
        co_return;
    }
    std::vector<asio::ip::tcp::endpoint> addresses;
    for (const auto& address : lookup.addresses) addresses.emplace_back(address, endpoint.port);
    enter(Phase::connect);
    if (refuse(ec)) co_return;
    co_await connect_in_order(socket_, std::move(addresses), transcript_, deadline_, ec);
    // A deadline that passed between tries (or a stop) ends them as a timeout (or a stop) too.
    refuse(ec);
    if (ec) co_return;
    if (metrics_ != nullptr && !metrics_->ip_version) {
        error_code ignored;
        metrics_->ip_version = socket_.remote_endpoint(ignored).address().is_v6() ? 6 : 4;
    }
    request_arrival_times(socket_);  // replies are timed by their arrival
}

asio::awaitable<void> Connection::start_tls(Endpoint endpoint, error_code& ec) {
    enter(Phase::tls_handshake);
    if (refuse(ec)) co_return;
    if (!endpoint.tls_context) {
        transcript_.note("no TLS context for " + endpoint.host);
        ec = asio::error::invalid_argument;
        co_return;
    }
    tls_.emplace(socket_, *endpoint.tls_context);
    SSL* ssl = tls_->native_handle();
    if (!tls::prepare_connection(ssl, endpoint.host, endpoint.tls_options)) {
        transcript_.note("OpenSSL refuses the name to verify the certificate against");
        ec = asio::error::invalid_argument;
        co_return;
    }
    rejected_certificate_.reset();
    // This handshake's certificate, not an earlier connection's of the same run.
    if (metrics_ != nullptr) metrics_->certificate.reset();
    tls_->set_verify_callback([this, ssl, skip = endpoint.tls_options.insecure_skip_verify](
                                  bool preverified, asio::ssl::verify_context& context) {
        // Read here, during verification, so that what the server presented and what was
        // negotiated are known even when verification fails.
        X509_STORE_CTX* store = context.native_handle();
        const auto not_after = tls::earliest_not_after(store);
        if (metrics_ != nullptr) {
            if (not_after && (!metrics_->cert_not_after || *not_after < *metrics_->cert_not_after))
                metrics_->cert_not_after = not_after;
            if (!metrics_->certificate)
                metrics_->certificate = tls::certificate_facts(X509_STORE_CTX_get0_cert(store));
            metrics_->tls_version = SSL_get_version(ssl);
            // Mid-handshake, the chosen suite may still be the pending one (TLS 1.2).
            const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
            if (cipher == nullptr) cipher = SSL_get_pending_cipher(ssl);
            if (cipher != nullptr) metrics_->tls_cipher = SSL_CIPHER_get_name(cipher);
        }
        if (preverified || skip) return true;
        // Only this refusal makes a failed handshake the certificate's fault: OpenSSL's verify
        // result is also set when verification is skipped, and the server may abort later.
        rejected_certificate_ = X509_STORE_CTX_get_error(context.native_handle());
        return false;
    });
    co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    const std::string version = SSL_get_version(ssl);
    const std::string cipher = SSL_get_cipher_name(ssl);
    if (metrics_ != nullptr) {
        if (auto verified = tls::earliest_not_after_verified(ssl))
            metrics_->cert_not_after = verified;
        metrics_->tls_version = version;
        metrics_->tls_cipher = cipher;
    }
    transcript_.note("TLS established: " + version + " " + cipher);
}

asio::awaitable<void> Connection::write(std::string_view bytes, error_code& ec) {
    if (refuse(ec)) co_return;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    if (tls_) {
        co_await asio::async_write(*tls_, asio::buffer(bytes), token);
    } else {
        co_await asio::async_write(socket_, asio::buffer(bytes), token);
    }
}

asio::awaitable<std::string_view> Connection::read(error_code& ec) {
    if (refuse(ec)) co_return std::string_view();
    request_quick_ack(socket_);
    auto buffer = asio::buffer(buffer_);
    std::size_t received = 0;
    Clock::time_point arrival;
    if (tls_) {
        // TLS decrypts inside the stream: the arrival is when the read completed.
        received =
            co_await tls_->async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
        arrival = Clock::now();
    } else {
        received = co_await read_with_arrival(socket_, buffer, arrival, ec);
    }
    // A server that closes without close_notify has still closed the connection.
    if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
    if (ec) co_return std::string_view();
    clock_.arrived(arrival);
    last_arrival_ = arrival;
    co_return std::string_view(buffer_.data(), received);
}

void Connection::write_detached(std::string bytes) {
    if (closed_) return;
    auto kept = std::make_shared<std::string>(std::move(bytes));
    const auto written = [kept, self = shared_from_this()](error_code, std::size_t) {};
    if (tls_) {
        asio::async_write(*tls_, asio::buffer(*kept), written);
    } else {
        asio::async_write(socket_, asio::buffer(*kept), written);
    }
}

Failure Connection::failure(const error_code& ec) {
    const std::optional<Phase> phase = clock_.current();
    const std::string in_phase = phase ? std::string(to_string(*phase)) : "";
    if (closed_) return {FailureReason::closed, "the agent closed the connection"};
    // What the lookup said (a timeout included, with the servers it waited for).
    if (phase == Phase::resolve && !lookup_failure_.empty()) {
        return {FailureReason::dns, lookup_failure_};
    }
    if (timed_out_) {
        return {timeout_reason(phase), "timed out" + (phase ? " during " + in_phase : "")};
    }
    // The agent's own want, whatever the phase: never to be read as the server's or network's.
    if (ec == asio::error::no_descriptors ||
        ec == boost::system::errc::too_many_files_open_in_system) {
        return {FailureReason::descriptors_exhausted, "the agent is out of file descriptors (" +
                                                          ec.message() + ")" +
                                                          (phase ? " during " + in_phase : "")};
    }
    if (phase == Phase::tls_handshake) {
        if (rejected_certificate_) {
            return {tls::certificate_failure(*rejected_certificate_),
                    "certificate: " + tls::describe_certificate_error(*rejected_certificate_)};
        }
        // Whatever else ended it (an alert from the server, say): its words are in the message.
        return {FailureReason::tls_handshake, "TLS handshake: " + ec.message()};
    }
    if (phase == Phase::connect && ec == asio::error::connection_refused) {
        return {FailureReason::connect_refused, ec.message()};
    }
    if (ec == asio::error::eof) {
        return {FailureReason::closed,
                "the server closed the connection" + (phase ? " during " + in_phase : "")};
    }
    return {FailureReason::network, (phase ? in_phase + ": " : "") + ec.message()};
}

InterruptOnStop::InterruptOnStop(StopSignal& stop, const std::shared_ptr<Connection>& connection)
    : stop_(stop) {
    stop.on_request([weak = std::weak_ptr(connection)] {
        if (auto alive = weak.lock()) alive->interrupt();
    });
}

}  // namespace mailcanary
