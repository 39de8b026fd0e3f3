#include "protocols/dns_server.hpp"

#include <algorithm>
#include <charconv>

namespace mailcanary {

namespace asio = boost::asio;
using boost::system::error_code;

std::optional<DnsServer> parse_dns_server(std::string_view text, std::string& problem) {
    std::string_view host = text;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos ||
            (close + 1 < text.size() && text[close + 1] != ':')) {
            problem = "an IPv6 address with a port is written \"[addr]:port\"";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        if (close + 1 < text.size()) port = text.substr(close + 2);
        if (close + 1 < text.size() && port.empty()) {
            problem = "empty port after ':'";
            return std::nullopt;
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        const auto colon = text.find(':');
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) {
            problem = "empty port after ':'";
            return std::nullopt;
        }
    }
    error_code ec;
    const auto address = asio::ip::make_address(std::string(host), ec);
    if (ec) {
        problem = "\"" + std::string(host) +
                  "\" is not an IP address (a DNS server is given by its address, with an "
                  "optional port: \"192.0.2.53\", \"192.0.2.53:5353\", \"[::1]:5353\")";
        return std::nullopt;
    }
    DnsServer server{address, 53};
    if (!port.empty()) {
        unsigned number = 0;
        const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
        if (error != std::errc() || end != port.data() + port.size() || number == 0 ||
            number > 65535) {
            problem = "port \"" + std::string(port) + "\" is not a number from 1 to 65535";
            return std::nullopt;
        }
        server.port = static_cast<uint16_t>(number);
    }
    return server;
}

std::string to_string(const DnsServer& server) {
    const std::string address = server.address.to_string();
    return (server.address.is_v6() ? "[" + address + "]" : address) + ":" +
           std::to_string(server.port);
}

}  // namespace mailcanary
