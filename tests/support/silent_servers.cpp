#include "support/silent_servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>
// Boost 1.74's awaitable.hpp needs <utility> first.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// Reads (and drops) whatever the client sends until it closes the connection.
asio::awaitable<void> hold(tcp::socket socket, std::atomic<std::uint64_t>& held) {
    char sink[256];
    error_code ec;
    while (!ec) {
        co_await socket.async_read_some(asio::buffer(sink),
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
    --held;
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor, std::atomic<std::uint64_t>& accepted,
                                 std::atomic<std::uint64_t>& held) {
    for (;;) {
        error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // the client gave up before it was accepted
        ++accepted;
        ++held;
        asio::co_spawn(acceptor.get_executor(), hold(std::move(socket), held), asio::detached);
    }
}

sockaddr_in ipv4(const std::string& address, std::uint16_t port) {
    sockaddr_in socket_address{};
    socket_address.sin_family = AF_INET;
    socket_address.sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &socket_address.sin_addr) != 1)
        throw std::invalid_argument("not an IPv4 address: " + address);
    return socket_address;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

SilentServers::SilentServers(const std::vector<std::string>& addresses) {
    for (const auto& address : addresses) {
        tcp::acceptor& acceptor =
            acceptors_.emplace_back(io_, tcp::endpoint(asio::ip::make_address_v4(address), 0));
        endpoints_.push_back(acceptor.local_endpoint());
    }
    for (auto& acceptor : acceptors_) {
        asio::co_spawn(io_, accept_all(acceptor, accepted_, held_), asio::detached);
    }
    thread_ = std::thread([this] { io_.run(); });
}

SilentServers::~SilentServers() {
    // Stopping the loop and destroying it closes every socket and frees every coroutine.
    io_.stop();
    thread_.join();
}

NeverAccepting::NeverAccepting(const std::string& address) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in bound = ipv4(address, 0);
    socklen_t size = sizeof bound;
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&bound), size) != 0 ||
        listen(listener_, 0) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &size) != 0) {
        fail("a listener on " + address);
    }
    port_ = ntohs(bound.sin_port);
    // A backlog of 0 still queues one connection: this one, which fills the queue.
    filler_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (filler_ < 0 || connect(filler_, reinterpret_cast<const sockaddr*>(&bound), size) != 0)
        fail("filling the queue of " + address);

    // From now on a connect must stay in progress (its SYNs dropped), not complete or fail.
    const int check = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (check < 0) fail("a socket");
    if (connect(check, reinterpret_cast<const sockaddr*>(&bound), size) != 0 &&
        errno != EINPROGRESS) {
        fail("a connect to the full queue");
    }
    pollfd waiting{check, POLLOUT, 0};
    const int ready = poll(&waiting, 1, 300);
    ::close(check);
    if (ready != 0)
        throw std::runtime_error("a connect to a listener with a full queue was not left hanging");
}

NeverAccepting::~NeverAccepting() {
    ::close(filler_);
    ::close(listener_);
}

}  // namespace mailcanary::test
