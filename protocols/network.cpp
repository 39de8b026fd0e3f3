#include "protocols/network.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <ctime>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <functional>

#include "common/blocking_work.hpp"

namespace mailcanary {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// getaddrinfo itself, on a worker thread: it cannot be cancelled, so the run stops waiting for it
// at its deadline instead, and other targets' lookups do not queue behind a slow one.
Lookup lookup(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    Lookup result;
    if (const int code = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
        code != 0) {
        result.error = ::gai_strerror(code);
        return result;
    }
    for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
        tcp::endpoint endpoint;
        if (entry->ai_addrlen > endpoint.capacity()) continue;
        std::memcpy(endpoint.data(), entry->ai_addr, entry->ai_addrlen);
        endpoint.resize(entry->ai_addrlen);
        result.endpoints.push_back(endpoint);
    }
    ::freeaddrinfo(found);
    if (result.endpoints.empty()) result.error = "no addresses";
    return result;
}

}  // namespace

asio::awaitable<Lookup> resolve(std::string host, uint16_t port, Clock::time_point deadline) {
    error_code ec;
    const auto literal = asio::ip::make_address(host, ec);
    if (!ec) co_return Lookup{{tcp::endpoint(literal, port)}, {}};
    // A named function, not a temporary in the co_await expression: g++ 12 destroys such
    // temporaries twice.
    std::function<Lookup()> work = [host, port] { return lookup(host, port); };
    auto answer = co_await run_blocking<Lookup>(std::move(work), deadline);
    if (!answer) co_return Lookup{{}, "timed out"};
    co_return std::move(*answer);
}

std::string to_string(const tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    const std::string host =
        address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return host + ":" + std::to_string(endpoint.port());
}

asio::awaitable<void> connect_in_order(tcp::socket& socket, std::vector<tcp::endpoint> endpoints,
                                       Transcript& transcript, Clock::time_point deadline,
                                       error_code& ec) {
    for (const auto& endpoint : endpoints) {
        if (Clock::now() >= deadline) {
            ec = asio::error::timed_out;
            co_return;
        }
        error_code ignored;
        socket.close(ignored);
        co_await socket.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) {
            // Without it, Nagle and delayed ACKs stall small request/reply exchanges by 40 ms.
            socket.set_option(tcp::no_delay(true), ignored);
            transcript.note("connected to " + to_string(endpoint));
            co_return;
        }
        transcript.note("connect to " + to_string(endpoint) + " failed: " + ec.message());
        if (ec == asio::error::operation_aborted) co_return;  // timed out or stopped: no more tries
    }
}

void request_quick_ack(tcp::socket& socket) {
    const int quick_ack = 1;
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &quick_ack, sizeof quick_ack);
}

void request_arrival_times(tcp::socket& socket) {
    const int stamp = 1;
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &stamp, sizeof stamp);
}

asio::awaitable<std::size_t> read_with_arrival(tcp::socket& socket, asio::mutable_buffer buffer,
                                               Clock::time_point& arrival, error_code& ec) {
    for (;;) {
        co_await socket.async_wait(tcp::socket::wait_read,
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return 0;
        iovec data{buffer.data(), buffer.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
        msghdr message{};
        message.msg_iov = &data;
        message.msg_iovlen = 1;
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        const ssize_t received = ::recvmsg(socket.native_handle(), &message, MSG_DONTWAIT);
        if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        const auto now = Clock::now();
        arrival = now;
        if (received < 0) {
            ec.assign(errno, boost::system::system_category());
            co_return 0;
        }
        if (received == 0) {
            ec = asio::error::eof;
            co_return 0;
        }
        for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
             header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_TIMESTAMPNS) continue;
            timespec stamp{};
            std::memcpy(&stamp, CMSG_DATA(header), sizeof stamp);
            // The stamp is wall-clock time: how long ago it was, on the steady clock.
            timespec wall{};
            ::clock_gettime(CLOCK_REALTIME, &wall);
            const auto ago = std::chrono::seconds(wall.tv_sec - stamp.tv_sec) +
                             std::chrono::nanoseconds(wall.tv_nsec - stamp.tv_nsec);
            if (ago >= Clock::duration::zero()) arrival = now - ago;
        }
        co_return static_cast<std::size_t>(received);
    }
}

}  // namespace mailcanary
