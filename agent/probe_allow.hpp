// Which hosts the /probe endpoint may probe ([probe_endpoint] allow): host names, domain
// wildcards and address ranges, so that an agent reachable by others is no open SMTP prober.
//
// A host name matches itself (case and a final dot aside); "*.example.com" matches every name
// under example.com, not example.com itself; an address or a CIDR matches a target given as an
// address. A name is never resolved to be checked against a CIDR: what is probed is what was
// allowed, whatever DNS says between the check and the connection.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary {

// What is wrong with an entry of `allow`, worded for a configuration error.
std::optional<std::string> check_allow_entry(const std::string& entry);

class AllowList {
  public:
    // The entries have passed check_allow_entry; one that did not matches nothing.
    explicit AllowList(const std::vector<std::string>& entries);

    // `host`: a name, or an address (an IPv6 one without brackets).
    bool allows(std::string_view host) const;

  private:
    struct Range {
        boost::asio::ip::address network;
        unsigned prefix;
    };
    std::vector<std::string> names_;     // lower case, without a final dot
    std::vector<std::string> suffixes_;  // ".example.com" for "*.example.com"
    std::vector<Range> ranges_;          // a single address has the whole length as prefix
};

}  // namespace mailcanary
