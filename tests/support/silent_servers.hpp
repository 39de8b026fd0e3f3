// Servers that never answer, cheap enough for ten thousand targets (the scale test,
// tests/integration/silent_servers_integration_test.cpp): listeners on many loopback addresses
// that accept every connection and hold it without a word until the client closes it, and a
// listener that never lets a connection be established at all.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace mailcanary::test {

// One listener on each of `addresses` (IPv4, within 127.0.0.0/8: every one of them is the
// loopback's), each on a port the system picks; all served by one thread of their own.
class SilentServers {
  public:
    explicit SilentServers(const std::vector<std::string>& addresses);
    ~SilentServers();  // closes every connection and joins the thread

    SilentServers(const SilentServers&) = delete;
    SilentServers& operator=(const SilentServers&) = delete;

    const std::vector<boost::asio::ip::tcp::endpoint>& endpoints() const { return endpoints_; }
    // Connections accepted so far, and those still open.
    std::uint64_t accepted() const { return accepted_; }
    std::uint64_t held() const { return held_; }

  private:
    boost::asio::io_context io_;
    std::vector<boost::asio::ip::tcp::acceptor> acceptors_;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
    std::atomic<std::uint64_t> accepted_ = 0;
    std::atomic<std::uint64_t> held_ = 0;
    std::thread thread_;
};

// A loopback listener whose accept queue is full: a backlog of 0, taken by one connection of its
// own that is never accepted. The kernel then drops every SYN that arrives, so a client's connect
// neither completes nor is refused: it times out. The constructor checks that it does.
class NeverAccepting {
  public:
    explicit NeverAccepting(const std::string& address);
    ~NeverAccepting();

    NeverAccepting(const NeverAccepting&) = delete;
    NeverAccepting& operator=(const NeverAccepting&) = delete;

    std::uint16_t port() const { return port_; }

  private:
    int listener_ = -1;
    int filler_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace mailcanary::test
