// The resolver against an in-process DNS server on 127.0.0.1 (UDP, port 0) whose answers are
// built byte by byte here: what a failure says and who said it, the families asked, the TTL
// cache with an injected clock, the deadline and a stop, and MX ordering.
#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocols/connection.hpp"
#include "protocols/dns_resolver.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint16_t kA = 1;
constexpr uint16_t kMx = 15;
constexpr uint16_t kAaaa = 28;
constexpr int kNoError = 0;
constexpr int kServfail = 2;
constexpr int kNxdomain = 3;

struct Query {
    std::string name;  // dotted, as asked
    uint16_t type = 0;
    std::string packet;
};

struct Record {
    uint16_t type;
    uint32_t ttl;
    std::string data;  // RDATA
};

std::string u16(std::size_t value) {
    return {static_cast<char>((value >> 8) & 0xff), static_cast<char>(value & 0xff)};
}

std::string u32(uint32_t value) { return u16(value >> 16) + u16(value & 0xffff); }

std::string encoded_name(const std::string& dotted) {
    std::string out;
    std::size_t start = 0;
    while (start < dotted.size()) {
        const auto dot = std::min(dotted.find('.', start), dotted.size());
        out += static_cast<char>(dot - start);
        out += dotted.substr(start, dot - start);
        start = dot + 1;
    }
    return out + '\0';
}

std::string a_data(const char* address) {
    const auto bytes = asio::ip::make_address_v4(address).to_bytes();
    return {bytes.begin(), bytes.end()};
}

std::string aaaa_data(const char* address) {
    const auto bytes = asio::ip::make_address_v6(address).to_bytes();
    return {bytes.begin(), bytes.end()};
}

std::string mx_data(unsigned preference, const std::string& exchange) {
    return u16(preference) + encoded_name(exchange);
}

// The reply to `query`: its id and question, the rcode, and the records under the question's
// name (a pointer to offset 12).
std::string reply(const Query& query, int rcode, const std::vector<Record>& records = {}) {
    const std::size_t question_end = query.packet.find('\0', 12) + 5;
    std::string out = query.packet.substr(0, 2) + u16(0x8180 | rcode) + u16(1) +
                      u16(records.size()) + u16(0) + u16(0) +
                      query.packet.substr(12, question_end - 12);
    for (const Record& record : records) {
        out += u16(0xc00c) + u16(record.type) + u16(1) + u32(record.ttl) + u16(record.data.size()) +
               record.data;
    }
    return out;
}

// Answers each query with what `respond` returns; nothing (silence) for an empty optional.
class FakeDns {
  public:
    using Respond = std::function<std::optional<std::string>(const Query&)>;

    FakeDns(asio::io_context& io, Respond respond)
        : socket_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          respond_(std::move(respond)) {
        receive();
    }

    DnsServer server() const {
        return {socket_.local_endpoint().address(), socket_.local_endpoint().port()};
    }
    std::string name() const { return to_string(server()); }
    const std::vector<Query>& asked() const { return asked_; }
    std::size_t asked_for(uint16_t type) const {
        return std::count_if(asked_.begin(), asked_.end(),
                             [&](const Query& query) { return query.type == type; });
    }

  private:
    void receive() {
        socket_.async_receive_from(
            asio::buffer(buffer_), from_, [this](boost::system::error_code ec, std::size_t size) {
                if (ec) return;
                Query query;
                query.packet.assign(buffer_.data(), size);
                std::size_t at = 12;
                while (at < size && buffer_[at] != 0) {
                    const auto length = static_cast<unsigned char>(buffer_[at]);
                    if (!query.name.empty()) query.name += '.';
                    query.name.append(buffer_.data() + at + 1, length);
                    at += length + 1;
                }
                query.type =
                    static_cast<uint16_t>((static_cast<unsigned char>(buffer_[at + 1]) << 8) |
                                          static_cast<unsigned char>(buffer_[at + 2]));
                asked_.push_back(query);
                if (auto answer = respond_(query)) socket_.send_to(asio::buffer(*answer), from_);
                receive();
            });
    }

    udp::socket socket_;
    Respond respond_;
    std::array<char, 1500> buffer_{};
    udp::endpoint from_;
    std::vector<Query> asked_;
};

// The test zone: a.test (A and AAAA), v4.test (A only), gone.test NXDOMAIN, broken.test SERVFAIL.
std::optional<std::string> zone(const Query& query) {
    if (query.name == "a.test" && query.type == kA)
        return reply(query, kNoError, {{kA, 60, a_data("192.0.2.1")}});
    if (query.name == "a.test" && query.type == kAaaa)
        return reply(query, kNoError, {{kAaaa, 60, aaaa_data("2001:db8::1")}});
    if (query.name == "v4.test" && query.type == kA)
        return reply(query, kNoError, {{kA, 60, a_data("192.0.2.4")}});
    if (query.name == "v4.test") return reply(query, kNoError);  // NODATA
    if (query.name == "broken.test") return reply(query, kServfail);
    return reply(query, kNxdomain);
}

class DnsResolverTest : public testing::Test {
  protected:
    std::shared_ptr<DnsResolver> make(std::vector<DnsServer> servers,
                                      std::chrono::milliseconds attempt = 2000ms, int tries = 1) {
        DnsResolver::Options options;
        options.servers = std::move(servers);
        options.attempt_timeout = attempt;
        options.tries = tries;
        options.now = [this] { return now_; };
        options.use_hosts_file = false;
        std::string problem;
        auto resolver = DnsResolver::create(io_.get_executor(), std::move(options), problem);
        EXPECT_TRUE(resolver) << problem;
        return resolver;
    }

    template <typename T>
    T run(asio::awaitable<T> work) {
        std::optional<T> result;
        asio::co_spawn(io_, std::move(work), [&](const std::exception_ptr& error, T value) {
            if (error) std::rethrow_exception(error);
            result = std::move(value);
            io_.stop();
        });
        io_.restart();
        io_.run_for(10s);
        EXPECT_TRUE(result) << "the lookup did not end";
        return result.value_or(T{});
    }

    AddressLookup lookup(DnsResolver& resolver, const std::string& host, IpFamily family,
                         Clock::duration within = 5s) {
        DnsCancel cancel;
        return run(resolver.addresses(host, family, Clock::now() + within, cancel));
    }

    // How a connection to `host` through `resolver` fails, with `deadline` as its run's.
    Failure connect_failure(std::shared_ptr<DnsResolver> resolver, const std::string& host,
                            Clock::duration deadline, Transcript& transcript) {
        const auto connection = Connection::create(io_.get_executor(), transcript, nullptr);
        connection->set_deadline(Clock::now() + deadline);
        Endpoint endpoint;
        endpoint.host = host;
        endpoint.port = 25;
        endpoint.resolver = std::move(resolver);
        return run([&]() -> asio::awaitable<Failure> {
            boost::system::error_code ec;
            co_await connection->connect(endpoint, ec);
            co_return connection->failure(ec);
        }());
    }
    std::vector<std::string> strings(const std::vector<asio::ip::address>& addresses) {
        std::vector<std::string> out;
        out.reserve(addresses.size());
        for (const auto& address : addresses) out.push_back(address.to_string());
        return out;
    }

    asio::io_context io_;
    Clock::time_point now_ = Clock::now();
};

TEST_F(DnsResolverTest, NxdomainSaysSoAndNamesTheServer) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    const auto found = lookup(*resolver, "gone.test", IpFamily::v4);
    EXPECT_TRUE(found.addresses.empty());
    EXPECT_EQ(found.error, "NXDOMAIN from " + dns.name());
}

TEST_F(DnsResolverTest, ServfailSaysSo) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    const auto found = lookup(*resolver, "broken.test", IpFamily::any);
    EXPECT_EQ(found.error, "SERVFAIL from " + dns.name());
    // Asked once per type: the server's SERVFAIL is its answer, not asked again.
    EXPECT_EQ(dns.asked().size(), 2u);
}

TEST_F(DnsResolverTest, SilentServerTimesOut) {
    FakeDns dns(io_, [](const Query&) { return std::nullopt; });
    auto resolver = make({dns.server()}, 100ms, 2);
    const auto started = Clock::now();
    const auto found = lookup(*resolver, "a.test", IpFamily::v4);
    EXPECT_EQ(found.error, "timeout from " + dns.name());
    EXPECT_LT(Clock::now() - started, 2s);
    EXPECT_EQ(dns.asked_for(kA), 2u);  // each try
}

TEST_F(DnsResolverTest, AnyFamilyAsksBothWithIpv6First) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    const auto found = lookup(*resolver, "a.test", IpFamily::any);
    EXPECT_EQ(found.error, "");
    EXPECT_EQ(strings(found.addresses), (std::vector<std::string>{"2001:db8::1", "192.0.2.1"}));
}

TEST_F(DnsResolverTest, OneFamilyAsksOnlyForItsRecords) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    EXPECT_EQ(strings(lookup(*resolver, "a.test", IpFamily::v4).addresses),
              std::vector<std::string>{"192.0.2.1"});
    EXPECT_EQ(dns.asked_for(kAaaa), 0u);
    EXPECT_EQ(strings(lookup(*resolver, "a.test", IpFamily::v6).addresses),
              std::vector<std::string>{"2001:db8::1"});
    EXPECT_EQ(dns.asked_for(kA), 1u);
}

TEST_F(DnsResolverTest, NoAddressOfTheWantedFamily) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    const auto v6 = lookup(*resolver, "v4.test", IpFamily::v6);
    EXPECT_TRUE(v6.addresses.empty());
    EXPECT_EQ(v6.error, "no IPv6 address (NODATA from " + dns.name() + ")");
    // Either family will do: the IPv4 address, the missing AAAA in the notes only.
    const auto any = lookup(*resolver, "v4.test", IpFamily::any);
    EXPECT_EQ(strings(any.addresses), std::vector<std::string>{"192.0.2.4"});
    EXPECT_EQ(any.error, "");
}

TEST_F(DnsResolverTest, AnswersAreCachedForTheirTtl) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    EXPECT_EQ(lookup(*resolver, "a.test", IpFamily::v4).addresses.size(), 1u);
    now_ += 59s;
    const auto cached = lookup(*resolver, "A.Test", IpFamily::v4);
    EXPECT_EQ(strings(cached.addresses), std::vector<std::string>{"192.0.2.1"});
    EXPECT_EQ(dns.asked_for(kA), 1u);  // within the TTL of 60 s: not asked again
    ASSERT_FALSE(cached.notes.empty());
    EXPECT_NE(cached.notes.front().find("cached answer from " + dns.name() + ", 1 s left"),
              std::string::npos)
        << cached.notes.front();
    now_ += 2s;  // past the TTL
    EXPECT_EQ(lookup(*resolver, "a.test", IpFamily::v4).addresses.size(), 1u);
    EXPECT_EQ(dns.asked_for(kA), 2u);
}

TEST_F(DnsResolverTest, FailuresAreNotCached) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    EXPECT_FALSE(lookup(*resolver, "broken.test", IpFamily::v4).error.empty());
    EXPECT_FALSE(lookup(*resolver, "gone.test", IpFamily::v4).error.empty());
    EXPECT_FALSE(lookup(*resolver, "broken.test", IpFamily::v4).error.empty());
    EXPECT_FALSE(lookup(*resolver, "gone.test", IpFamily::v4).error.empty());
    EXPECT_EQ(dns.asked_for(kA), 4u);
}

TEST_F(DnsResolverTest, NextServerIsAskedWhenOneFails) {
    FakeDns failing(io_, [](const Query& query) { return reply(query, kServfail); });
    FakeDns working(io_, zone);
    auto resolver = make({failing.server(), working.server()});
    const auto found = lookup(*resolver, "a.test", IpFamily::v4);
    EXPECT_EQ(strings(found.addresses), std::vector<std::string>{"192.0.2.1"});
    ASSERT_GE(found.notes.size(), 2u);
    EXPECT_EQ(found.notes[0], "a.test A: SERVFAIL from " + failing.name());
    const auto gone = lookup(*resolver, "gone.test", IpFamily::v4);
    EXPECT_EQ(gone.error, "NXDOMAIN from " + working.name());
    // NXDOMAIN is an answer: the servers after the one that said it are not asked.
    auto working_first = make({working.server(), failing.server()});
    const std::size_t failing_asked = failing.asked().size();
    EXPECT_EQ(lookup(*working_first, "gone.test", IpFamily::v4).error,
              "NXDOMAIN from " + working.name());
    EXPECT_EQ(failing.asked().size(), failing_asked);
}

TEST_F(DnsResolverTest, IpLiteralNeedsNoLookup) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    EXPECT_EQ(strings(lookup(*resolver, "192.0.2.9", IpFamily::any).addresses),
              std::vector<std::string>{"192.0.2.9"});
    EXPECT_TRUE(dns.asked().empty());
}

TEST_F(DnsResolverTest, DeadlineEndsTheWaitAndTheResolverMayGoWhileAsking) {
    FakeDns dns(io_, [](const Query&) { return std::nullopt; });
    auto resolver = make({dns.server()}, 5000ms);
    const auto started = Clock::now();
    const auto found = lookup(*resolver, "a.test", IpFamily::any, 100ms);
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_EQ(found.error, "timeout: no answer from " + dns.name() + " by the run's deadline");
    // The queries are still open: their callbacks (ARES_EDESTRUCTION) must find nothing freed.
    resolver.reset();
    io_.restart();
    io_.run_for(50ms);
}

// Some servers answer NXDOMAIN for the AAAA of a name that has an A record (RFC 4074 4.2): the
// lookup waits for the other family's answer, as getaddrinfo does, and uses its addresses.
TEST_F(DnsResolverTest, AnNxdomainForOneFamilyDoesNotHideTheOthersAddresses) {
    // The A answer comes late (its first question is dropped, the retry is answered), long after
    // the AAAA's NXDOMAIN.
    int a_questions = 0;
    FakeDns dns(io_, [&a_questions](const Query& query) -> std::optional<std::string> {
        if (query.type == kAaaa) return reply(query, kNxdomain);
        if (++a_questions == 1) return std::nullopt;
        return reply(query, kNoError, {{kA, 60, a_data("192.0.2.7")}});
    });
    auto resolver = make({dns.server()}, 200ms, 2);
    const auto found = lookup(*resolver, "a.test", IpFamily::any, 5s);
    EXPECT_EQ(found.error, "");
    EXPECT_EQ(strings(found.addresses), std::vector<std::string>{"192.0.2.7"});
}

// A server (or a middlebox) that drops AAAA questions: the A answer is used after a short grace,
// not at the run's deadline, which would leave the run no time to connect.
TEST_F(DnsResolverTest, AFamilyLeftUnansweredIsNotWaitedForPastTheGrace) {
    FakeDns dns(io_, [](const Query& query) -> std::optional<std::string> {
        if (query.type == kAaaa) return std::nullopt;
        return reply(query, kNoError, {{kA, 60, a_data("192.0.2.8")}});
    });
    DnsResolver::Options options;
    options.servers = {dns.server()};
    options.attempt_timeout = 5000ms;
    options.tries = 1;
    options.use_hosts_file = false;
    options.other_family_grace = 100ms;
    std::string problem;
    const auto resolver = DnsResolver::create(io_.get_executor(), std::move(options), problem);
    ASSERT_TRUE(resolver) << problem;
    const auto started = Clock::now();
    const auto found = lookup(*resolver, "a.test", IpFamily::any, 5s);
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_EQ(found.error, "");
    EXPECT_EQ(strings(found.addresses), std::vector<std::string>{"192.0.2.8"});
    const std::string left_out =
        "a.test AAAA: no answer within 100ms of the other family's addresses; going on without it";
    EXPECT_NE(std::find(found.notes.begin(), found.notes.end(), left_out), found.notes.end())
        << testing::PrintToString(found.notes);

    // The next run takes A from the cache: the grace starts at once, not at an answer.
    const auto again = Clock::now();
    const auto cached = lookup(*resolver, "a.test", IpFamily::any, 5s);
    EXPECT_LT(Clock::now() - again, 1s);
    EXPECT_EQ(strings(cached.addresses), std::vector<std::string>{"192.0.2.8"});
    EXPECT_NE(std::find(cached.notes.begin(), cached.notes.end(), left_out), cached.notes.end())
        << testing::PrintToString(cached.notes);
}

// The other family's question unanswered by the deadline: the NXDOMAIN is what the run reports.
TEST_F(DnsResolverTest, AnNxdomainIsReportedWhenTheOtherFamilyIsUnanswered) {
    FakeDns dns(io_, [](const Query& query) -> std::optional<std::string> {
        if (query.type == kA) return reply(query, kNxdomain);
        return std::nullopt;  // AAAA: silence
    });
    auto resolver = make({dns.server()}, 5000ms);
    const auto found = lookup(*resolver, "gone.test", IpFamily::any, 300ms);
    EXPECT_EQ(found.error, "NXDOMAIN from " + dns.name());
}

TEST_F(DnsResolverTest, CancelEndsTheWait) {
    FakeDns dns(io_, [](const Query&) { return std::nullopt; });
    auto resolver = make({dns.server()}, 5000ms);
    DnsCancel cancel;
    asio::steady_timer stop(io_, 50ms);
    stop.async_wait([&](boost::system::error_code) { cancel.cancel(); });
    const auto started = Clock::now();
    const auto found = run(resolver->addresses("a.test", IpFamily::v4, Clock::now() + 5s, cancel));
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_EQ(found.error, "stopped while waiting for an answer from " + dns.name());
    // A late answer after the wait went away lands nowhere.
    cancel.cancel();
}

TEST_F(DnsResolverTest, ConnectionReportsTheLookupsFailureAsDns) {
    FakeDns dns(io_, zone);
    auto resolver = make({dns.server()});
    Transcript transcript(Clock::now());
    const auto failure = connect_failure(resolver, "gone.test", 5s, transcript);
    EXPECT_EQ(failure.reason, FailureReason::dns);
    EXPECT_EQ(failure.detail, "resolving gone.test: NXDOMAIN from " + dns.name());
    EXPECT_NE(transcript.to_text().find("gone.test A: NXDOMAIN from " + dns.name()),
              std::string::npos)
        << transcript.to_text();
}

TEST_F(DnsResolverTest, ConnectionDeadlineDuringTheLookupIsDnsWithTheServer) {
    FakeDns dns(io_, [](const Query&) { return std::nullopt; });
    auto resolver = make({dns.server()}, 5000ms);
    Transcript transcript(Clock::now());
    const auto started = Clock::now();
    const auto failure = connect_failure(resolver, "a.test", 100ms, transcript);
    EXPECT_LT(Clock::now() - started, 1s);
    EXPECT_EQ(failure.reason, FailureReason::dns);
    EXPECT_EQ(failure.detail,
              "resolving a.test: timeout: no answer from " + dns.name() + " by the run's deadline");
}

// --- MX -------------------------------------------------------------------------------------

std::optional<std::string> mx_zone(const Query& query) {
    if (query.type != kMx) return reply(query, kNxdomain);
    if (query.name == "mx.test") {
        // Out of order, with a tie at 10: sorted by preference, then by name.
        return reply(query, kNoError,
                     {{kMx, 3600, mx_data(20, "backup.mx.test")},
                      {kMx, 300, mx_data(10, "zulu.mx.test")},
                      {kMx, 120, mx_data(10, "Alpha.mx.test")}});
    }
    if (query.name == "null.test") return reply(query, kNoError, {{kMx, 300, mx_data(0, "")}});
    if (query.name == "nomx.test") return reply(query, kNoError);
    if (query.name == "broken.test") return reply(query, kServfail);
    return reply(query, kNxdomain);
}

class DnsMxTest : public DnsResolverTest {
  protected:
    MxLookup mx(const std::string& domain) {
        DnsCancel cancel;
        return run(resolver_->mx(domain, Clock::now() + 5s, cancel));
    }
    FakeDns dns_{io_, mx_zone};
    std::shared_ptr<DnsResolver> resolver_ = make({dns_.server()});
};

TEST_F(DnsMxTest, RecordsByPreferenceTiesByName) {
    const auto found = mx("mx.test");
    EXPECT_EQ(found.result, MxLookup::Result::records);
    EXPECT_EQ(found.records,
              (std::vector<MxRecord>{
                  {10, "alpha.mx.test"}, {10, "zulu.mx.test"}, {20, "backup.mx.test"}}));
    EXPECT_EQ(found.ttl, 120s);  // the least of the records' TTLs: when the set may change
}

TEST_F(DnsMxTest, NullMxIsRecognised) {
    const auto found = mx("null.test");
    EXPECT_EQ(found.result, MxLookup::Result::null_mx);
    EXPECT_EQ(found.records, (std::vector<MxRecord>{{0, ""}}));
    EXPECT_EQ(found.ttl, 300s);
}

TEST_F(DnsMxTest, NoMxIsToldFromNoDomain) {
    const auto none = mx("nomx.test");
    EXPECT_EQ(none.result, MxLookup::Result::no_mx);
    EXPECT_EQ(none.error, "no MX record (NODATA from " + dns_.name() + ")");
    const auto gone = mx("gone.test");
    EXPECT_EQ(gone.result, MxLookup::Result::no_domain);
    EXPECT_EQ(gone.error, "NXDOMAIN from " + dns_.name());
    const auto broken = mx("broken.test");
    EXPECT_EQ(broken.result, MxLookup::Result::failed);
    EXPECT_EQ(broken.error, "SERVFAIL from " + dns_.name());
}

}  // namespace
}  // namespace mailcanary::test
