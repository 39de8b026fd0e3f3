// A small HTTP/1.1 server (keep-alive, bounded requests, graceful stop) that hands each request
// to one synchronous handler. It runs on the caller's executor; all member functions and the
// handler run on that executor's (single) thread; only a Response's render_body runs elsewhere.
#pragma once

#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mailcanary {
class BasicAuth;
class TlsServerContext;
}  // namespace mailcanary

namespace mailcanary::http {

struct Request {
    std::string method;  // HEAD arrives as "GET": the server answers it without the body
    std::string path;    // the target up to '?', not decoded
    // Decoded (%XX, '+'); a repeated key keeps its first value.
    std::map<std::string, std::string> query;
    // Header fields by name in lower case; a repeated field keeps its first value.
    std::map<std::string, std::string> headers;
    std::string body;
};

struct Response;
// Makes the response on the server's loop, later: a coroutine that waits (for a probe run)
// without holding the loop up.
using Deferred = std::function<boost::asio::awaitable<Response>()>;

struct Response {
    unsigned status = 200;  // 200..599; anything else is answered with 500
    std::string content_type = "text/plain; charset=utf-8";  // empty: no Content-Type header
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // added as given
    // When set, makes the body on the server's render executor instead of the loop, so that a
    // costly body (a large /metrics) does not hold up everything else; it may only touch
    // thread-safe state. Throwing gives the client a 500.
    std::function<std::string()> render_body;
    // When set, the response is what this coroutine gives (everything else here is ignored).
    // It may outlive the handler's owner: it must hold what it uses. Throwing gives a 500.
    Deferred deferred;
};

inline Response plain_text(unsigned status, std::string body) {
    Response response;
    response.status = status;
    response.body = std::move(body);
    return response;
}

// Should not throw; if it does, the client gets a 500 and the server carries on.
using Handler = std::function<Response(const Request&)>;

struct Limits {
    std::size_t max_connections = 256;  // connections beyond it are accepted and closed at once
    // Deadline for each request to arrive in full (counted from the previous response, so it is
    // also the keep-alive idle time) and for each response to be written.
    std::chrono::milliseconds timeout = std::chrono::seconds(30);
    std::uint32_t max_header_bytes = 8 * 1024;                // beyond: 431
    std::uint64_t max_body_bytes = std::uint64_t{64} * 1024;  // beyond: 413
};

// What a client must show before its requests reach the handler (the web configuration file).
struct Protection {
    std::shared_ptr<TlsServerContext> tls;        // null: plain HTTP
    std::shared_ptr<const BasicAuth> basic_auth;  // null: no authentication
};

class Server {
  public:
    // `render_executor` runs Response::render_body; an empty one renders bodies inline.
    Server(boost::asio::any_io_executor executor, Handler handler, Limits limits = {},
           boost::asio::any_io_executor render_executor = {});
    // Closes everything at once; the handler is not called again. Destroy before the io_context.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens on each address: "host:port", "[v6]:port" or ":port" (all interfaces:
    // dual-stack [::], or 0.0.0.0 without IPv6). Port 0 picks an ephemeral port; a host name is
    // resolved and all of its addresses are bound. Returns one "address: reason" per address that
    // failed (an address either listens on all its endpoints or on none). Fails after stop().
    std::vector<std::string> listen(const std::vector<std::string>& addresses);
    std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

    // For connections accepted from now on, and requests read from now on. Every request is
    // covered: one without the right credentials gets a 401 and never reaches the handler; a
    // client that does not complete the TLS handshake (plain HTTP to a TLS port) is cut. The
    // passwords are checked on the render executor, off the loop: bcrypt takes its time.
    void protect(Protection protection);

    // Stops accepting and closes idle connections; requests in progress get their response (with
    // "Connection: close") for up to `grace`, then whatever is still open is cut. Leaves no work
    // behind in the io_context. Later calls do nothing.
    void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

  private:
    struct State;
    std::shared_ptr<State> state_;  // shared with the accept and connection coroutines
};

}  // namespace mailcanary::http
