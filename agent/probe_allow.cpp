#include "agent/probe_allow.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "probes/validators.hpp"

namespace mailcanary {
namespace {

namespace ip = boost::asio::ip;

std::optional<ip::address> parse_address(std::string_view text) {
    boost::system::error_code ec;
    const auto address = ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    return address;
}

unsigned address_bits(const ip::address& address) { return address.is_v4() ? 32 : 128; }

// "192.0.2.0/24" or "2001:db8::/32": the network and its prefix length.
std::optional<std::pair<ip::address, unsigned>> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto address = parse_address(text.substr(0, slash));
    const std::string_view bits = text.substr(slash + 1);
    unsigned prefix = 0;
    const auto [end, error] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (!address || bits.empty() || error != std::errc() || end != bits.data() + bits.size() ||
        prefix > address_bits(*address)) {
        return std::nullopt;
    }
    return std::pair{*address, prefix};
}

std::string normalized_name(std::string_view name) {
    if (name.ends_with('.')) name.remove_suffix(1);
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower;
}

std::array<unsigned char, 16> bytes_of(const ip::address& address) {
    std::array<unsigned char, 16> bytes{};
    if (address.is_v4()) {
        const auto v4 = address.to_v4().to_bytes();
        std::copy(v4.begin(), v4.end(), bytes.begin());
    } else {
        bytes = address.to_v6().to_bytes();
    }
    return bytes;
}

bool in_range(const ip::address& address, const ip::address& network, unsigned prefix) {
    if (address.is_v4() != network.is_v4()) return false;
    const auto a = bytes_of(address);
    const auto n = bytes_of(network);
    for (unsigned bit = 0; bit < prefix; ++bit) {
        const unsigned mask = 0x80U >> (bit % 8);
        if ((a[bit / 8] & mask) != (n[bit / 8] & mask)) return false;
    }
    return true;
}

}  // namespace

std::optional<std::string> check_allow_entry(const std::string& entry) {
    if (entry.empty()) return "must not be empty";
    if (entry.find('/') != std::string::npos) {
        if (parse_cidr(entry)) return std::nullopt;
        return "is not a CIDR (\"192.0.2.0/24\", \"2001:db8::/32\")";
    }
    if (entry.find('*') != std::string::npos) {
        if (entry.size() < 3 || !entry.starts_with("*.") || entry.find('*', 1) != std::string::npos)
            return "may hold a \"*\" only as a leading \"*.\" before a domain (\"*.example.com\")";
        return check_host(entry.substr(2));
    }
    return check_host(entry);
}

AllowList::AllowList(const std::vector<std::string>& entries) {
    for (const std::string& entry : entries) {
        if (check_allow_entry(entry)) continue;
        if (const auto cidr = parse_cidr(entry)) {
            ranges_.push_back({cidr->first, cidr->second});
        } else if (const auto address = parse_address(entry)) {
            ranges_.push_back({*address, address_bits(*address)});
        } else if (entry.starts_with("*.")) {
            suffixes_.push_back(normalized_name(entry.substr(1)));
        } else {
            names_.push_back(normalized_name(entry));
        }
    }
}

bool AllowList::allows(std::string_view host) const {
    if (const auto address = parse_address(host)) {
        return std::any_of(ranges_.begin(), ranges_.end(), [&](const Range& range) {
            return in_range(*address, range.network, range.prefix);
        });
    }
    const std::string name = normalized_name(host);
    if (name.empty()) return false;
    if (std::find(names_.begin(), names_.end(), name) != names_.end()) return true;
    return std::any_of(suffixes_.begin(), suffixes_.end(), [&](const std::string& suffix) {
        return name.size() > suffix.size() && name.ends_with(suffix);
    });
}

}  // namespace mailcanary
