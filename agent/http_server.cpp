#include "agent/http_server.hpp"

#include "agent/http_message.hpp"

#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include "agent/basic_auth.hpp"
#include "agent/tls_server.hpp"

namespace mailcanary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct Listener {
    explicit Listener(const asio::any_io_executor& executor)
        : acceptor(executor), retry_timer(executor) {}

    tcp::acceptor acceptor;
    asio::steady_timer retry_timer;
};

struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}

    // Idle: waiting for a request of which nothing has arrived yet, so stop() may close it.
    bool idle() const {
        return awaiting_request && buffer.size() == 0 && !(parser && parser->got_some());
    }

    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::optional<RequestParser> parser;
    bool awaiting_request = false;
    std::chrono::steady_clock::time_point waiting_since = std::chrono::steady_clock::now();
};

std::string to_string(const tcp::endpoint& endpoint) {
    const std::string address = endpoint.address().to_string();
    const std::string port = std::to_string(endpoint.port());
    return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

struct HostPort {
    std::string host;  // empty: all interfaces
    bool bracketed = false;
    std::uint16_t port = 0;
};

// Splits "host:port", "[v6]:port" or ":port"; on failure returns nullopt and sets `error`.
std::optional<HostPort> split_host_port(std::string_view address, std::string& error) {
    HostPort result;
    std::string_view port;
    if (address.starts_with('[')) {
        const auto bracket = address.find(']');
        if (bracket == std::string_view::npos) {
            error = "missing ']' after the IPv6 address";
            return std::nullopt;
        }
        if (address.substr(bracket + 1, 1) != ":") {
            error = "expected ':port' after ']'";
            return std::nullopt;
        }
        result.host = address.substr(1, bracket - 1);
        result.bracketed = true;
        port = address.substr(bracket + 2);
    } else {
        const auto colon = address.rfind(':');
        if (colon == std::string_view::npos) {
            error = "expected host:port, [ipv6]:port or :port";
            return std::nullopt;
        }
        result.host = address.substr(0, colon);
        if (result.host.find(':') != std::string::npos) {
            error = "an IPv6 address needs brackets, e.g. [::1]:9100";
            return std::nullopt;
        }
        port = address.substr(colon + 1);
    }
    unsigned value = 0;
    const auto [end, parse_error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || parse_error != std::errc() || end != port.data() + port.size() ||
        value > 65535) {
        error = "invalid port '" + std::string(port) + "'";
        return std::nullopt;
    }
    result.port = static_cast<std::uint16_t>(value);
    return result;
}

beast::error_code open_acceptor(tcp::acceptor& acceptor, const tcp::endpoint& endpoint,
                                bool dual_stack) {
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec && dual_stack) {
        acceptor.set_option(asio::ip::v6_only(false), ec);
    }
    if (!ec) {
        acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    return ec;
}

// Opens listeners on all interfaces: dual-stack [::], or 0.0.0.0 where IPv6 is unavailable.
std::optional<std::string> listen_on_all_interfaces(
    const asio::any_io_executor& executor, std::uint16_t port,
    std::vector<std::shared_ptr<Listener>>& opened) {
    auto listener = std::make_shared<Listener>(executor);
    const tcp::endpoint any_v6(asio::ip::address_v6::any(), port);
    beast::error_code ec = open_acceptor(listener->acceptor, any_v6, true);
    // A busy or forbidden port is the same on IPv4: report it rather than fall back.
    if (ec && ec != asio::error::address_in_use && ec != asio::error::access_denied) {
        listener = std::make_shared<Listener>(executor);
        ec = open_acceptor(listener->acceptor, tcp::endpoint(asio::ip::address_v4::any(), port),
                           false);
    }
    if (ec) {
        return "cannot listen on port " + std::to_string(port) + ": " + ec.message();
    }
    opened.push_back(std::move(listener));
    return std::nullopt;
}

std::optional<std::string> resolve(const asio::any_io_executor& executor, const HostPort& target,
                                   std::set<tcp::endpoint>& endpoints) {
    beast::error_code ec;
    const auto address = asio::ip::make_address(target.host, ec);
    if (target.bracketed && (ec || !address.is_v6())) {
        return "'" + target.host + "' is not an IPv6 address";
    }
    if (!ec) {
        endpoints.emplace(address, target.port);
        return std::nullopt;
    }
    tcp::resolver resolver(executor);
    const auto results = resolver.resolve(target.host, std::to_string(target.port),
                                          tcp::resolver::numeric_service, ec);
    if (ec) {
        return "cannot resolve '" + target.host + "': " + ec.message();
    }
    for (const auto& entry : results) {
        endpoints.insert(entry.endpoint());
    }
    return std::nullopt;
}

// Returns the listeners for one address, or why there are none.
std::optional<std::string> open_listeners(const asio::any_io_executor& executor,
                                          std::string_view address,
                                          std::vector<std::shared_ptr<Listener>>& opened) {
    std::string error;
    const auto target = split_host_port(address, error);
    if (!target) {
        return error;
    }
    if (target->host.empty()) {
        return listen_on_all_interfaces(executor, target->port, opened);
    }
    std::set<tcp::endpoint> endpoints;
    if (auto resolve_error = resolve(executor, *target, endpoints)) {
        return resolve_error;
    }
    for (const auto& endpoint : endpoints) {
        auto listener = std::make_shared<Listener>(executor);
        if (const auto ec = open_acceptor(listener->acceptor, endpoint, false)) {
            opened.clear();  // all endpoints of an address or none
            return "cannot listen on " + to_string(endpoint) + ": " + ec.message();
        }
        opened.push_back(std::move(listener));
    }
    return std::nullopt;
}

// Runs `work` on `executor` (inline when it is empty) and resumes the caller on its own
// executor with the result.
template <typename Result>
asio::awaitable<Result> run_on(asio::any_io_executor executor, std::function<Result()> work) {
    if (!executor) co_return work();
    // A named closure: g++ 12 destroys a lambda temporary in a co_await expression twice.
    auto task = [work = std::move(work)]() -> asio::awaitable<Result> { co_return work(); };
    co_return co_await asio::co_spawn(std::move(executor), std::move(task), asio::use_awaitable);
}

Response unauthorized() {
    auto response = plain_text(401, "Unauthorized\n");
    response.headers.emplace_back("WWW-Authenticate",
                                  "Basic realm=\"mailcanary\", charset=\"UTF-8\"");
    return response;
}

template <typename Stream>
asio::awaitable<beast::error_code> write_response(Connection& connection, Stream& stream,
                                                  ResponseMessage response,
                                                  std::chrono::milliseconds timeout) {
    beast::error_code ec;
    connection.stream.expires_after(timeout);
    co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
}

// Reads and drops what the client still sends (e.g. the rest of a refused body) for a moment, so
// that closing does not reset the connection before the client has read the error response.
asio::awaitable<void> discard_input(std::shared_ptr<Connection> connection) {
    beast::error_code ec;
    connection->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    connection->stream.expires_after(1s);
    std::array<char, 4096> scratch{};
    while (!ec) {
        co_await connection->stream.async_read_some(asio::buffer(scratch),
                                                    asio::redirect_error(asio::use_awaitable, ec));
    }
}

}  // namespace

struct Server::State {
    State(asio::any_io_executor io_executor, Handler request_handler, Limits server_limits,
          asio::any_io_executor render_on)
        : executor(std::move(io_executor)),
          render_executor(std::move(render_on)),
          handler(std::move(request_handler)),
          limits(server_limits),
          grace_timer(executor) {}

    static asio::awaitable<void> accept(std::shared_ptr<State> state,
                                        std::shared_ptr<Listener> listener);
    static asio::awaitable<void> serve(std::shared_ptr<State> state,
                                       std::shared_ptr<Connection> connection);
    // Reads requests and answers them until the connection ends: the same over TLS or not.
    template <typename Stream>
    static asio::awaitable<void> exchange(std::shared_ptr<State> state,
                                          std::shared_ptr<Connection> connection, Stream& stream);

    void stop_accepting() {
        stopping = true;
        for (const auto& listener : listeners) {
            beast::error_code ec;
            listener->acceptor.close(ec);
            listener->retry_timer.cancel();
        }
    }

    // At the cap, the connection that has waited longest for its request makes room: clients
    // that hold connections open without finishing a request (slowloris) cannot lock out a
    // scrape, whose request arrives within milliseconds. False when every connection is busy.
    bool evict_longest_waiting() {
        std::shared_ptr<Connection> longest;
        for (const auto& connection : connections) {
            if (connection->awaiting_request &&
                (!longest || connection->waiting_since < longest->waiting_since)) {
                longest = connection;
            }
        }
        if (!longest) return false;
        longest->stream.close();
        return true;
    }

    // Returns whether any connection is left open.
    bool close_connections(bool only_idle) {
        bool any_open = false;
        for (const auto& connection : connections) {
            if (!only_idle || connection->idle()) {
                connection->stream.close();
            } else {
                any_open = true;
            }
        }
        return any_open;
    }

    // The handler's reply with its body rendered (on the render executor if there is one);
    // nullopt when either threw, for a 500.
    asio::awaitable<std::optional<Response>> respond(RequestMessage& request);
    asio::awaitable<bool> authorized(const RequestMessage& request);

    asio::any_io_executor executor;
    asio::any_io_executor render_executor;  // empty: render inline
    Handler handler;
    Limits limits;
    Protection protection;
    std::vector<std::shared_ptr<Listener>> listeners;
    std::set<std::shared_ptr<Connection>> connections;
    asio::steady_timer grace_timer;  // runs only while stop() waits for requests in progress
    bool stopping = false;
};

asio::awaitable<void> Server::State::accept(std::shared_ptr<State> state,
                                            std::shared_ptr<Listener> listener) {
    for (;;) {
        beast::error_code ec;
        tcp::socket socket =
            co_await listener->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (state->stopping) {
            co_return;
        }
        if (ec) {
            // Typically out of file descriptors: wait for some to be freed instead of spinning.
            listener->retry_timer.expires_after(100ms);
            co_await listener->retry_timer.async_wait(
                asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        if (state->connections.size() >= state->limits.max_connections &&
            !state->evict_longest_waiting()) {
            socket.close(ec);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        auto connection = std::make_shared<Connection>(std::move(socket));
        // Registered here rather than in serve() so the cap counts connections not yet started.
        state->connections.insert(connection);
        asio::co_spawn(state->executor, serve(state, std::move(connection)), asio::detached);
    }
}

asio::awaitable<std::optional<Response>> Server::State::respond(RequestMessage& request) {
    std::optional<Response> reply = call_handler(handler, request);
    if (reply && reply->deferred) {
        auto deferred = std::exchange(reply->deferred, nullptr);
        try {
            reply = co_await deferred();
        } catch (...) {
            co_return std::nullopt;
        }
    }
    if (!reply || !reply->render_body) co_return reply;
    auto render = std::exchange(reply->render_body, nullptr);
    try {
        reply->body = co_await run_on(render_executor, std::move(render));
    } catch (...) {
        co_return std::nullopt;
    }
    co_return reply;
}

asio::awaitable<void> Server::State::serve(std::shared_ptr<State> state,
                                           std::shared_ptr<Connection> connection) {
    struct Unregister {
        ~Unregister() {
            state.connections.erase(connection);
            if (state.stopping && state.connections.empty()) {
                state.grace_timer.cancel();
            }
        }
        State& state;
        const std::shared_ptr<Connection>& connection;
    } unregister{*state, connection};

    if (const auto tls = state->protection.tls) {
        const auto context = tls->current();  // outlives the stream that uses it
        asio::ssl::stream<beast::tcp_stream&> stream(connection->stream, *context);
        // Waiting for the handshake counts as waiting for a request: a client that opens
        // connections and never says hello can be evicted at the cap, and is cut by stop().
        connection->awaiting_request = true;
        connection->waiting_since = std::chrono::steady_clock::now();
        connection->stream.expires_after(state->limits.timeout);
        beast::error_code ec;
        co_await stream.async_handshake(asio::ssl::stream_base::server,
                                        asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) co_await exchange(state, connection, stream);
    } else {
        co_await exchange(state, connection, connection->stream);
    }
    beast::error_code ec;
    connection->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    connection->stream.close();
}

asio::awaitable<bool> Server::State::authorized(const RequestMessage& request) {
    // Held across the wait: a reload may replace the users meanwhile.
    const std::shared_ptr<const BasicAuth> auth = protection.basic_auth;
    if (!auth) co_return true;
    const auto header = request[bhttp::field::authorization];
    if (header.empty()) co_return false;
    std::function<bool()> check = [auth, value = std::string(header)] {
        return auth->allows(value);
    };
    co_return co_await run_on(render_executor, std::move(check));
}

template <typename Stream>
asio::awaitable<void> Server::State::exchange(std::shared_ptr<State> state,
                                              std::shared_ptr<Connection> connection,
                                              Stream& stream) {
    for (;;) {
        auto& parser = connection->parser.emplace();
        apply_limits(parser, state->limits);

        beast::error_code ec;
        connection->awaiting_request = true;
        connection->waiting_since = std::chrono::steady_clock::now();
        connection->stream.expires_after(state->limits.timeout);
        co_await bhttp::async_read_header(stream, connection->buffer, parser,
                                          asio::redirect_error(asio::use_awaitable, ec));
        connection->awaiting_request = false;
        if (!ec && !parser.is_done() && expects_continue(parser.get())) {
            bhttp::response<bhttp::empty_body> proceed(bhttp::status::continue_,
                                                       parser.get().version());
            co_await bhttp::async_write(stream, proceed,
                                        asio::redirect_error(asio::use_awaitable, ec));
        }
        if (!ec && !parser.is_done()) {
            co_await bhttp::async_read(stream, connection->buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
        }
        if (ec) {
            if (const auto status = status_for_read_error(ec)) {
                co_await write_response(*connection, stream, error_response(*status, 11, false),
                                        state->limits.timeout);
                co_await discard_input(connection);
            }
            break;
        }
        if (!connection->stream.socket().is_open()) {
            break;  // closed by stop() or ~Server() while the request was arriving
        }

        RequestMessage request = parser.release();  // Beast accepts only HTTP/1.0 and 1.1
        std::optional<Response> reply;
        if (co_await state->authorized(request)) {
            reply = co_await state->respond(request);
        } else {
            reply = unauthorized();
        }
        const bool keep_alive_wanted = request.keep_alive() && !state->stopping;
        ResponseMessage response = reply ? to_message(std::move(*reply), request, keep_alive_wanted)
                                         : error_response(bhttp::status::internal_server_error,
                                                          request.version(), keep_alive_wanted);
        const bool keep_alive = response.keep_alive();
        ec = co_await write_response(*connection, stream, std::move(response),
                                     state->limits.timeout);
        if (ec || !keep_alive) {
            break;
        }
    }
}

Server::Server(asio::any_io_executor executor, Handler handler, Limits limits,
               asio::any_io_executor render_executor)
    : state_(std::make_shared<State>(std::move(executor), std::move(handler), limits,
                                     std::move(render_executor))) {}

Server::~Server() {
    state_->stop_accepting();
    state_->close_connections(false);
    state_->grace_timer.cancel();
}

std::vector<std::string> Server::listen(const std::vector<std::string>& addresses) {
    std::vector<std::string> errors;
    for (const auto& address : addresses) {
        if (state_->stopping) {
            errors.push_back(address + ": the server is stopped");
            continue;
        }
        std::vector<std::shared_ptr<Listener>> opened;
        if (auto error = open_listeners(state_->executor, address, opened)) {
            errors.push_back(address + ": " + *error);
            continue;
        }
        for (auto& listener : opened) {
            asio::co_spawn(state_->executor, State::accept(state_, listener), asio::detached);
            state_->listeners.push_back(std::move(listener));
        }
    }
    return errors;
}

void Server::protect(Protection protection) { state_->protection = std::move(protection); }

std::vector<tcp::endpoint> Server::local_endpoints() const {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& listener : state_->listeners) {
        beast::error_code ec;
        const auto endpoint = listener->acceptor.local_endpoint(ec);
        if (!ec) {
            endpoints.push_back(endpoint);
        }
    }
    return endpoints;
}

void Server::stop(std::chrono::milliseconds grace) {
    if (state_->stopping) {
        return;
    }
    state_->stop_accepting();
    if (!state_->close_connections(true)) {
        return;
    }
    state_->grace_timer.expires_after(grace);
    state_->grace_timer.async_wait([state = state_](const beast::error_code& ec) {
        if (!ec) {
            state->close_connections(false);
        }
    });
}

}  // namespace mailcanary::http
