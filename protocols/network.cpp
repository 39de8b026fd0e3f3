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

namespace mailcanary {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

asio::awaitable<AddressLookup> resolve(const Endpoint& endpoint, Clock::time_point deadline,
                                       DnsCancel& cancel) {
    error_code ec;
    const auto literal = asio::ip::make_address(endpoint.host, ec);
    if (!ec) {
        const bool wanted = endpoint.family == IpFamily::any ||
                            literal.is_v4() == (endpoint.family == IpFamily::v4);
        if (wanted) co_return AddressLookup{{literal}, {}, {}};
        co_return AddressLookup{
            {},
            endpoint.family == IpFamily::v4 ? "not an IPv4 address" : "not an IPv6 address",
            {}};
    }
    if (!endpoint.resolver) co_return AddressLookup{{}, "no DNS resolver to look the name up", {}};
    // A named copy, not a temporary in the co_await expression: g++ 12 destroys such temporaries
    // twice.
    std::string host = endpoint.host;
    co_return co_await endpoint.resolver->addresses(std::move(host), endpoint.family, deadline,
                                                    cancel);
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
