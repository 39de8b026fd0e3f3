// Name resolution on the agent's event loop through c-ares: no thread per lookup, no blocking.
// One resolver per agent (its channels and its answer cache), shared by every run; it reaches a
// connection through the run's Endpoint. docs/architecture.md, "DNS".
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/dns_server.hpp"
#include "protocols/ip_family.hpp"

namespace mailcanary {

// What a lookup of a host's addresses found. The detail of a failure says what happened
// (NXDOMAIN, SERVFAIL, REFUSED, timeout, no address of the family) and which server said it.
struct AddressLookup {
    std::vector<boost::asio::ip::address> addresses;  // in the order to try them
    std::string error;                                // set when there are no addresses
    std::vector<std::string> notes;                   // for the transcript: what was asked, said
};

// One MX record; the null MX of RFC 7505 ("MX 0 .") has an empty exchange.
struct MxRecord {
    uint16_t preference = 0;
    std::string exchange;

    bool operator==(const MxRecord&) const = default;
};

struct MxLookup {
    enum class Result { records, null_mx, no_mx, no_domain, failed };
    Result result = Result::failed;
    // By preference, lowest first; ties in the order of the exchange's name (case-insensitive),
    // so that a server's shuffling of equal records does not look like a change.
    std::vector<MxRecord> records;
    std::string error;  // what happened and which server said it, unless records
    // The least TTL of the records (records, null_mx); 0 when not known.
    std::chrono::seconds ttl{0};
};

// Cuts a lookup short (a stop request). Safe before, during and after the lookup.
class DnsCancel {
  public:
    void cancel();
    bool cancelled() const { return cancelled_; }

  private:
    friend class DnsResolver;
    bool cancelled_ = false;
    std::weak_ptr<boost::asio::steady_timer> wait_;
};

class DnsResolver : public std::enable_shared_from_this<DnsResolver> {
  public:
    using Clock = std::chrono::steady_clock;

    struct Options {
        // Asked in order, the next one only when one fails (SERVFAIL, REFUSED, timeout); empty:
        // the servers of the system's resolv.conf.
        std::vector<DnsServer> servers;
        // How long one server has for one try, and how many tries it gets.
        std::chrono::milliseconds attempt_timeout{2000};
        int tries = 2;
        // How long a lookup of both families waits for the second once the first gave
        // addresses: both are asked at once, so a later answer means a question lost.
        std::chrono::milliseconds other_family_grace{1000};
        // When a cached answer expires; the steady clock unless a test injects its own.
        std::function<Clock::time_point()> now = [] { return Clock::now(); };
        // Whether /etc/hosts is read before DNS is asked, as getaddrinfo does ("files dns"):
        // `localhost` keeps working. A small local file, read as c-ares reads it.
        bool use_hosts_file = true;
    };

    // The channels are made on `executor`'s loop, which must outlive the resolver; every call
    // is made on that loop. Null, with `problem` set, when c-ares cannot be set up.
    static std::shared_ptr<DnsResolver> create(const boost::asio::any_io_executor& executor,
                                               Options options, std::string& problem);
    ~DnsResolver();
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    // The servers it asks, in order: "192.0.2.53:53, [::1]:5353".
    std::string servers() const;

    // The addresses of `host` of `family` (A for v4, AAAA for v6, both for any: IPv6 first, as
    // getaddrinfo orders them on a dual-stack host). An IP literal needs no lookup. Answers come
    // from the cache while their TTL lasts; failures are never cached. The wait ends at
    // `deadline`, when `cancel` is used, or other_family_grace after one family's addresses came
    // (the transcript notes the family left out); the queries then go on unobserved.
    boost::asio::awaitable<AddressLookup> addresses(std::string host, IpFamily family,
                                                    Clock::time_point deadline, DnsCancel& cancel);

    // The MX records of `domain`, telling a domain without MX (no_mx) from one that does not
    // exist (no_domain) and recognising the null MX. Not cached.
    boost::asio::awaitable<MxLookup> mx(std::string domain, Clock::time_point deadline,
                                        DnsCancel& cancel);

  private:
    class Channel;
    struct Answer;
    struct Gather;

    DnsResolver(boost::asio::any_io_executor executor, Options options);
    bool start(std::string& problem);
    // Asks the servers from `server` on, in order, until one answers (or the last fails).
    void ask(std::string name, int type, std::size_t server, std::vector<std::string> trail,
             std::function<void(Answer)> done);
    // Waits for every question of `gather` to be answered, `deadline` or `cancel`.
    boost::asio::awaitable<void> wait(std::shared_ptr<Gather> gather, Clock::time_point deadline,
                                      DnsCancel& cancel);
    // What to say when the wait ended before `gather` was answered.
    std::string unanswered(Clock::time_point deadline, const DnsCancel& cancel) const;
    std::optional<AddressLookup> from_hosts_file(const std::string& host, IpFamily family);

    struct Cached {
        std::vector<boost::asio::ip::address> addresses;
        Clock::time_point expires;
        std::string server;
    };

    boost::asio::any_io_executor executor_;
    Options options_;
    std::vector<std::shared_ptr<Channel>> channels_;       // one per server, in order
    std::map<std::pair<std::string, int>, Cached> cache_;  // by (lower-case name, type)
};

}  // namespace mailcanary
