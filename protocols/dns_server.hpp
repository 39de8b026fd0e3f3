// A DNS server as [agent] dns_servers names one.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

// One of [agent] dns_servers: an IP address and a port.
struct DnsServer {
    boost::asio::ip::address address;
    uint16_t port = 53;

    bool operator==(const DnsServer&) const = default;
};

// "192.0.2.53", "192.0.2.53:5353", "::1" or "[::1]:5353"; no names (a DNS server cannot be
// looked up). Empty, with `problem` set, when the text is none of these.
std::optional<DnsServer> parse_dns_server(std::string_view text, std::string& problem);
// As in a transcript: "192.0.2.53:53", "[::1]:5353".
std::string to_string(const DnsServer& server);

}  // namespace mailcanary
