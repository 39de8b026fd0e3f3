#include "support/fake_smtp_server.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>  // before Boost: Boost 1.74's coroutine support needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

// A client that never sends CRLF ends its connection here rather than growing the buffer forever.
constexpr std::size_t kMaxLineBytes = std::size_t{64} * 1024;
// How long the close step waits for the client's close_notify after sending its own.
constexpr std::chrono::milliseconds kTlsCloseGrace{250};

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

bool uses_tls(const std::vector<ScriptStep>& script, const FakeServerOptions& options) {
    return options.implicit_tls ||
           std::any_of(script.begin(), script.end(), [](const ScriptStep& step) {
               return step.kind == ScriptStep::Kind::start_tls ||
                      step.kind == ScriptStep::Kind::abort_tls;
           });
}

// TLS 1.2 framing (RFC 5246 6.2.1, 7.4): a record is a type, a version and a 16-bit length; a
// handshake message a type and a 24-bit length.
constexpr unsigned char kAlertRecord = 21;
constexpr unsigned char kHandshakeRecord = 22;
constexpr unsigned char kCertificateMessage = 11;
constexpr std::size_t kMaxRecordPayload = 16384;

std::size_t big_endian(std::string_view bytes) {
    std::size_t value = 0;
    for (const char byte : bytes) value = value << 8 | static_cast<unsigned char>(byte);
    return value;
}

// What the server sends instead of its first flight (`flight`, the plaintext records OpenSSL
// wrote): the handshake messages up to and including the Certificate, then a fatal
// internal_error alert. Empty when the flight has no Certificate.
std::string cut_after_certificate(std::string_view flight) {
    std::string version;
    std::string messages;
    while (flight.size() >= 5 && flight.size() >= 5 + big_endian(flight.substr(3, 2))) {
        const std::size_t length = big_endian(flight.substr(3, 2));
        if (static_cast<unsigned char>(flight[0]) == kHandshakeRecord) {
            version = flight.substr(1, 2);
            messages.append(flight.substr(5, length));
        }
        flight.remove_prefix(5 + length);
    }
    std::size_t kept = 0;
    bool certificate = false;
    while (!certificate && kept + 4 <= messages.size()) {
        certificate = static_cast<unsigned char>(messages[kept]) == kCertificateMessage;
        kept += 4 + big_endian(std::string_view(messages).substr(kept + 1, 3));
    }
    if (!certificate || kept > messages.size()) return {};
    std::string out;
    const auto record = [&](unsigned char type, std::string_view payload) {
        out += static_cast<char>(type);
        out += version;
        out += static_cast<char>(payload.size() >> 8);
        out += static_cast<char>(payload.size() & 0xff);
        out += payload;
    };
    for (std::size_t at = 0; at < kept; at += kMaxRecordPayload) {
        record(kHandshakeRecord,
               std::string_view(messages).substr(at, std::min(kMaxRecordPayload, kept - at)));
    }
    record(kAlertRecord, "\x02\x50");  // fatal (2), internal_error (80)
    return out;
}

// What a connection does once its script has stopped running.
enum class ScriptEnd { keep_reading, close };

}  // namespace

ScriptStep send(std::string bytes) { return {ScriptStep::Kind::send, std::move(bytes), {}}; }

ScriptStep send_dripped(std::string bytes, std::chrono::milliseconds gap) {
    return {ScriptStep::Kind::send_dripped, std::move(bytes), gap};
}

ScriptStep expect_line(std::string prefix) {
    return {ScriptStep::Kind::expect_line, std::move(prefix), {}};
}

ScriptStep answer(std::function<std::string(const std::string& line)> respond) {
    return {ScriptStep::Kind::answer, {}, {}, std::move(respond)};
}

ScriptStep start_tls() { return {ScriptStep::Kind::start_tls, {}, {}}; }

ScriptStep abort_tls() { return {ScriptStep::Kind::abort_tls, {}, {}}; }

ScriptStep delay(std::chrono::milliseconds duration) {
    return {ScriptStep::Kind::delay, {}, duration};
}

ScriptStep send_forever(std::string chunk) {
    // An empty chunk would spin without ever noticing the client leave.
    if (chunk.empty()) {
        throw std::invalid_argument("send_forever needs a non-empty chunk");
    }
    return {ScriptStep::Kind::send_forever, std::move(chunk), {}};
}

ScriptStep hang() { return {ScriptStep::Kind::hang, {}, {}}; }

ScriptStep close() { return {ScriptStep::Kind::close, {}, {}}; }

ScriptStep reset() { return {ScriptStep::Kind::reset, {}, {}}; }

// Everything below runs on the server's own thread, except what is guarded by mutex.
struct FakeSmtpServer::Impl {
    class Connection;

    Impl(std::vector<ScriptStep> steps, FakeServerOptions options);
    ~Impl();

    awaitable<void> accept_loop();
    awaitable<void> serve(std::shared_ptr<Connection> connection);
    void stop();
    void record(std::string line);

    const std::vector<ScriptStep> script;
    const bool implicit_tls;
    std::optional<asio::ssl::context> tls_context;
    asio::io_context io_context;
    tcp::acceptor acceptor;
    const uint16_t port;  // read by other threads, which must not touch the acceptor
    std::vector<std::weak_ptr<Connection>> live_connections;
    bool stopping = false;

    mutable std::mutex mutex;
    mutable std::condition_variable connection_ended;
    std::vector<std::string> lines;
    int accepted = 0;
    int active = 0;

    std::thread thread;
};

class FakeSmtpServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(Impl& server, tcp::socket socket)
        : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

    awaitable<ScriptEnd> run_script();
    awaitable<void> start_tls();
    awaitable<void> abort_tls();
    awaitable<void> record_until_disconnect();
    void close();
    // Closes with a TCP RST instead of a FIN.
    void reset();
    // Makes whatever the connection is waiting for fail at once, so the server can stop.
    void abort();

  private:
    awaitable<void> write(std::string_view bytes);
    awaitable<std::string> read_line();
    awaitable<void> sleep(std::chrono::milliseconds duration);
    awaitable<void> close_tls();

    Impl& server_;
    tcp::socket socket_;
    std::optional<asio::ssl::stream<tcp::socket&>> tls_;  // engaged from the TLS handshake on
    asio::steady_timer timer_;
    std::string read_buffer_;
    bool aborted_ = false;
};

awaitable<ScriptEnd> FakeSmtpServer::Impl::Connection::run_script() {
    for (const ScriptStep& step : server_.script) {
        switch (step.kind) {
            case ScriptStep::Kind::send:
                co_await write(step.bytes);
                break;
            case ScriptStep::Kind::send_dripped:
                for (std::size_t i = 0; i < step.bytes.size(); ++i) {
                    if (i > 0) {
                        co_await sleep(step.duration);
                    }
                    co_await write(std::string_view(step.bytes).substr(i, 1));
                }
                break;
            case ScriptStep::Kind::expect_line: {
                std::string line = co_await read_line();
                const bool expected = starts_with_ignoring_case(line, step.bytes);
                server_.record(std::move(line));
                if (!expected) {
                    co_return ScriptEnd::close;
                }
                break;
            }
            case ScriptStep::Kind::answer: {
                std::string line = co_await read_line();
                const std::string reply = step.respond(line);
                server_.record(std::move(line));
                co_await write(reply);
                break;
            }
            case ScriptStep::Kind::start_tls:
                co_await start_tls();
                break;
            case ScriptStep::Kind::abort_tls:
                co_await abort_tls();
                co_return ScriptEnd::close;
            case ScriptStep::Kind::delay:
                co_await sleep(step.duration);
                break;
            case ScriptStep::Kind::send_forever:
                for (;;) {
                    co_await write(step.bytes);  // ends by throwing once the client is gone
                }
            case ScriptStep::Kind::hang:
                co_return ScriptEnd::keep_reading;
            case ScriptStep::Kind::close:
                if (tls_) {
                    co_await close_tls();
                }
                co_return ScriptEnd::close;
            case ScriptStep::Kind::reset:
                reset();
                co_return ScriptEnd::close;
        }
    }
    co_return ScriptEnd::keep_reading;
}

awaitable<void> FakeSmtpServer::Impl::Connection::start_tls() {
    // Plaintext pipelined after STARTTLS must not count as part of the TLS session.
    read_buffer_.clear();
    tls_.emplace(socket_, *server_.tls_context);
    co_await tls_->async_handshake(asio::ssl::stream_base::server, use_awaitable);
}

awaitable<void> FakeSmtpServer::Impl::Connection::abort_tls() {
    read_buffer_.clear();
    // OpenSSL plays the server over memory BIOs, so that its first flight can be cut short.
    const std::unique_ptr<SSL, decltype(&SSL_free)> ssl(
        SSL_new(server_.tls_context->native_handle()), &SSL_free);
    // TLS 1.2: the flight is plaintext, and a plaintext alert may follow it.
    SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);
    BIO* const written = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), BIO_new(BIO_s_mem()), written);  // the SSL owns both
    SSL_set_accept_state(ssl.get());
    std::array<char, 4096> chunk{};
    while (BIO_pending(written) == 0) {
        const std::size_t received =
            co_await socket_.async_read_some(asio::buffer(chunk), use_awaitable);
        BIO_write(SSL_get_rbio(ssl.get()), chunk.data(), static_cast<int>(received));
        const int result = SSL_do_handshake(ssl.get());
        if (SSL_get_error(ssl.get(), result) != SSL_ERROR_WANT_READ) break;
    }
    std::string flight(static_cast<std::size_t>(BIO_pending(written)), '\0');
    BIO_read(written, flight.data(), static_cast<int>(flight.size()));
    const std::string cut = cut_after_certificate(flight);
    if (cut.empty()) {
        ADD_FAILURE() << "abort_tls: OpenSSL's first flight has no Certificate";
        co_return;
    }
    co_await write(cut);
}

awaitable<void> FakeSmtpServer::Impl::Connection::record_until_disconnect() {
    for (;;) {
        server_.record(co_await read_line());  // ends by throwing at end of stream
    }
}

void FakeSmtpServer::Impl::Connection::close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

void FakeSmtpServer::Impl::Connection::reset() {
    boost::system::error_code ignored;
    // A zero linger time makes close() send RST and drop what is unsent.
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
}

void FakeSmtpServer::Impl::Connection::abort() {
    aborted_ = true;  // sleep() checks it: a cancel only reaches a wait already started
    timer_.cancel();
    close();
}

awaitable<void> FakeSmtpServer::Impl::Connection::write(std::string_view bytes) {
    const asio::const_buffer buffer(bytes.data(), bytes.size());
    if (tls_) {
        co_await asio::async_write(*tls_, buffer, use_awaitable);
    } else {
        co_await asio::async_write(socket_, buffer, use_awaitable);
    }
}

awaitable<std::string> FakeSmtpServer::Impl::Connection::read_line() {
    auto buffer = asio::dynamic_buffer(read_buffer_, kMaxLineBytes);
    std::size_t length = 0;
    if (tls_) {
        length = co_await asio::async_read_until(*tls_, buffer, "\r\n", use_awaitable);
    } else {
        length = co_await asio::async_read_until(socket_, buffer, "\r\n", use_awaitable);
    }
    std::string line = read_buffer_.substr(0, length - 2);
    read_buffer_.erase(0, length);
    co_return line;
}

awaitable<void> FakeSmtpServer::Impl::Connection::sleep(std::chrono::milliseconds duration) {
    if (aborted_) {
        throw boost::system::system_error(asio::error::operation_aborted);
    }
    timer_.expires_after(duration);
    co_await timer_.async_wait(use_awaitable);
}

awaitable<void> FakeSmtpServer::Impl::Connection::close_tls() {
    // async_shutdown sends close_notify, then waits for the client's; a client that never sends
    // one must not hold the connection open, so the timer closes it after a grace period.
    timer_.expires_after(kTlsCloseGrace);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
        if (!error) {
            self->close();
        }
    });
    boost::system::error_code ignored;  // clients often just close: that is fine here
    co_await tls_->async_shutdown(asio::redirect_error(use_awaitable, ignored));
    timer_.cancel();
}

FakeSmtpServer::Impl::Impl(std::vector<ScriptStep> steps, FakeServerOptions options)
    : script(std::move(steps)),
      implicit_tls(options.implicit_tls),
      acceptor(io_context, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
      port(acceptor.local_endpoint().port()) {
    if (uses_tls(script, options)) {
        if (!options.tls) {
            throw std::invalid_argument(
                "FakeSmtpServer: the script uses TLS but options.tls is empty");
        }
        tls_context.emplace(asio::ssl::context::tls_server);
        tls_context->use_certificate_chain(asio::buffer(options.tls->cert_pem));
        tls_context->use_private_key(asio::buffer(options.tls->key_pem), asio::ssl::context::pem);
    }
    asio::co_spawn(io_context, accept_loop(), asio::detached);
    thread = std::thread([this] { io_context.run(); });
}

// Stopping lets every coroutine finish rather than destroying suspended ones with the
// io_context, so run() returns on its own once the last connection has unwound.
FakeSmtpServer::Impl::~Impl() {
    asio::post(io_context, [this] { stop(); });
    thread.join();
}

awaitable<void> FakeSmtpServer::Impl::accept_loop() {
    for (;;) {
        boost::system::error_code error;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(use_awaitable, error));
        if (error || stopping) {
            co_return;
        }
        // Nagle plus the client's delayed ACK would stall small writes by 40 ms, notably after
        // STARTTLS.
        socket.set_option(tcp::no_delay(true), error);
        auto connection = std::make_shared<Connection>(*this, std::move(socket));
        std::erase_if(live_connections, [](const auto& weak) { return weak.expired(); });
        live_connections.push_back(connection);
        {
            std::lock_guard lock(mutex);
            ++accepted;
            ++active;
        }
        asio::co_spawn(io_context, serve(std::move(connection)), asio::detached);
    }
}

awaitable<void> FakeSmtpServer::Impl::serve(std::shared_ptr<Connection> connection) {
    try {
        if (implicit_tls) {
            co_await connection->start_tls();
        }
        if (co_await connection->run_script() == ScriptEnd::keep_reading) {
            co_await connection->record_until_disconnect();
        }
    } catch (const boost::system::system_error&) {
        // The client left, TLS failed, or the server is stopping: all ordinary ends here.
    }
    connection->close();
    {
        std::lock_guard lock(mutex);
        --active;
    }
    connection_ended.notify_all();
}

void FakeSmtpServer::Impl::stop() {
    stopping = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (const std::weak_ptr<Connection>& weak : live_connections) {
        if (std::shared_ptr<Connection> connection = weak.lock()) {
            connection->abort();
        }
    }
}

void FakeSmtpServer::Impl::record(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
}

FakeSmtpServer::FakeSmtpServer(std::vector<ScriptStep> script, FakeServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(script), std::move(options))) {}

FakeSmtpServer::~FakeSmtpServer() = default;

uint16_t FakeSmtpServer::port() const { return impl_->port; }

std::vector<std::string> FakeSmtpServer::received_lines() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->lines;
}

int FakeSmtpServer::connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->accepted;
}

bool FakeSmtpServer::wait_for_disconnects(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->connection_ended.wait_for(lock, timeout, [this] { return impl_->active == 0; });
}

std::vector<ScriptStep> FakeSmtpServer::healthy_script(bool offer_starttls) {
    const std::string ehlo_reply =
        "250-fake.mailcanary.test\r\n"
        "250-PIPELINING\r\n"
        "250-SIZE 10240000\r\n"
        "250-8BITMIME\r\n";
    std::vector<ScriptStep> script{send("220 fake.mailcanary.test ESMTP ready\r\n"),
                                   expect_line("EHLO ")};
    if (offer_starttls) {
        script.push_back(send(ehlo_reply + "250 STARTTLS\r\n"));
        script.push_back(expect_line("STARTTLS"));
        script.push_back(send("220 2.0.0 Ready to start TLS\r\n"));
        script.push_back(start_tls());
        script.push_back(expect_line("EHLO "));
    }
    script.push_back(send(ehlo_reply + "250 SMTPUTF8\r\n"));
    script.push_back(expect_line("QUIT"));
    script.push_back(send("221 2.0.0 Bye\r\n"));
    script.push_back(close());
    return script;
}

}  // namespace mailcanary::test
