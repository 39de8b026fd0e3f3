// What every probe connection starts with: name resolution through the agent's resolver,
// connecting to each address in turn, and socket settings that keep small request/reply
// exchanges fast.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/dns_resolver.hpp"
#include "protocols/endpoint.hpp"

namespace mailcanary {

// The endpoint's addresses of its family: an IP literal as it is, a name through the endpoint's
// resolver, waiting no later than `deadline` or until `cancel` is used.
boost::asio::awaitable<AddressLookup> resolve(const Endpoint& endpoint,
                                              std::chrono::steady_clock::time_point deadline,
                                              DnsCancel& cancel);

// Connects to the first endpoint that accepts, trying them in order as an MTA does; an
// interruption (operation_aborted: the deadline or a stop) or the deadline ends the tries. When
// none accepts, `ec` holds the last error.
boost::asio::awaitable<void> connect_in_order(boost::asio::ip::tcp::socket& socket,
                                              std::vector<boost::asio::ip::tcp::endpoint> endpoints,
                                              Transcript& transcript,
                                              std::chrono::steady_clock::time_point deadline,
                                              boost::system::error_code& ec);

// Acknowledge at once: a server that writes a reply in two segments (TLS 1.3 session tickets
// then the reply, say) would otherwise wait on our delayed ACK under Nagle, adding 40 ms that
// no server caused. Linux drops the mode after a while, so it is set before every read.
void request_quick_ack(boost::asio::ip::tcp::socket& socket);

// Asks the kernel to stamp what arrives on the connected socket (SO_TIMESTAMPNS), for
// read_with_arrival.
void request_arrival_times(boost::asio::ip::tcp::socket& socket);

// Reads what has arrived once the socket is readable, and when: the time the kernel received the
// last of it (after request_arrival_times), else the time of the read. A phase timed from arrival
// does not count the moments the agent's loop was busy with other runs.
boost::asio::awaitable<std::size_t> read_with_arrival(
    boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
    std::chrono::steady_clock::time_point& arrival, boost::system::error_code& ec);

std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace mailcanary
