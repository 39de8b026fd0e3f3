// The /probe endpoint's sans-I/O parts: the allow list, the per-host rate limit (made-up times),
// the request's parameters and headers, the deadline, the exposition of a run, and the
// endpoint's refusals before anything runs.
#include "agent/probe_endpoint.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "support/exposition.hpp"

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::value_of;

// --- Allow list

TEST(AllowList, MatchesNamesWithoutRegardToCaseOrAFinalDot) {
    const AllowList allow({"mx1.example.net"});
    EXPECT_TRUE(allow.allows("mx1.example.net"));
    EXPECT_TRUE(allow.allows("MX1.Example.NET."));
    EXPECT_FALSE(allow.allows("mx2.example.net"));
    EXPECT_FALSE(allow.allows("mx1.example.net.evil.test"));
    EXPECT_FALSE(allow.allows("x.mx1.example.net"));
}

TEST(AllowList, AWildcardMatchesNamesUnderTheDomainOnly) {
    const AllowList allow({"*.example.com"});
    EXPECT_TRUE(allow.allows("mx.example.com"));
    EXPECT_TRUE(allow.allows("a.b.example.com"));
    EXPECT_FALSE(allow.allows("example.com")) << "not the domain itself";
    EXPECT_FALSE(allow.allows("badexample.com"));
    EXPECT_FALSE(allow.allows("example.com.evil.test"));
}

TEST(AllowList, CidrsAndAddressesMatchAddressesOnly) {
    const AllowList allow({"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"});
    EXPECT_TRUE(allow.allows("192.0.2.1"));
    EXPECT_TRUE(allow.allows("192.0.2.255"));
    EXPECT_FALSE(allow.allows("192.0.3.1"));
    EXPECT_TRUE(allow.allows("2001:db8:1::25"));
    EXPECT_FALSE(allow.allows("2001:db9::25"));
    EXPECT_TRUE(allow.allows("198.51.100.7"));
    EXPECT_FALSE(allow.allows("198.51.100.8"));
    EXPECT_FALSE(allow.allows("::ffff:192.0.2.1")) << "a mapped address is not the IPv4 range";
}

TEST(AllowList, NeverResolvesANameForARange) {
    const AllowList allow({"127.0.0.0/8"});
    EXPECT_FALSE(allow.allows("localhost"));
}

TEST(AllowList, EmptyAllowsNothing) {
    const AllowList allow({});
    EXPECT_FALSE(allow.allows("127.0.0.1"));
    EXPECT_FALSE(allow.allows("localhost"));
}

TEST(AllowList, EntriesAreChecked) {
    EXPECT_FALSE(check_allow_entry("mx.example.com"));
    EXPECT_FALSE(check_allow_entry("*.example.com"));
    EXPECT_FALSE(check_allow_entry("10.0.0.0/8"));
    EXPECT_FALSE(check_allow_entry("::1"));
    EXPECT_TRUE(check_allow_entry(""));
    EXPECT_TRUE(check_allow_entry("*"));
    EXPECT_TRUE(check_allow_entry("mx.*.example.com"));
    EXPECT_TRUE(check_allow_entry("*.*.example.com"));
    EXPECT_TRUE(check_allow_entry("10.0.0.0/33"));
    EXPECT_TRUE(check_allow_entry("10.0.0.0/"));
    EXPECT_TRUE(check_allow_entry("example.com/24"));
    EXPECT_TRUE(check_allow_entry("mx example.com"));
}

// --- Rate limit

TEST(HostRateLimit, AdmitsOneRunPerKeyPerInterval) {
    HostRateLimit limit(5s);
    const Clock::time_point start{};
    EXPECT_TRUE(limit.admit("connect@mx1", start).admitted);
    const auto refused = limit.admit("connect@mx1", start + 2s);
    EXPECT_FALSE(refused.admitted);
    EXPECT_EQ(refused.retry_after, 3s);
    EXPECT_TRUE(limit.admit("connect@mx2", start + 2s).admitted) << "another host";
    EXPECT_TRUE(limit.admit("auth@mx1", start + 2s).admitted) << "another module";
    EXPECT_FALSE(limit.admit("connect@mx1", start + 4999ms).admitted);
    EXPECT_TRUE(limit.admit("connect@mx1", start + 5s).admitted);
    EXPECT_FALSE(limit.admit("connect@mx1", start + 6s).admitted) << "counted from the last run";
}

TEST(HostRateLimit, ForgetsHostsOnceTheirIntervalIsOver) {
    HostRateLimit limit(1s);
    const Clock::time_point start{};
    for (int i = 0; i < 100; ++i) limit.admit("m@host" + std::to_string(i), start);
    EXPECT_EQ(limit.remembered(), 100u);
    limit.admit("m@other", start + 1s);
    EXPECT_EQ(limit.remembered(), 1u);
}

// --- The request

http::Request probe_request(std::map<std::string, std::string> query,
                            std::map<std::string, std::string> headers = {}) {
    http::Request request;
    request.method = "GET";
    request.path = "/probe";
    request.query = std::move(query);
    request.headers = std::move(headers);
    return request;
}

ProbeRequest parsed(const http::Request& request) {
    auto result = parse_probe_request(request);
    if (auto* problem = std::get_if<std::string>(&result)) ADD_FAILURE() << *problem;
    return std::get<ProbeRequest>(std::move(result));
}

std::string problem_of(const http::Request& request) {
    auto result = parse_probe_request(request);
    if (std::holds_alternative<ProbeRequest>(result)) return "(no problem)";
    return std::get<std::string>(result);
}

TEST(ProbeRequest, ReadsHostsAndPortsAsBlackboxTakesThem) {
    const auto plain = parsed(probe_request({{"module", "m"}, {"target", "mx.example.net"}}));
    EXPECT_EQ(plain.module, "m");
    EXPECT_EQ(plain.host, "mx.example.net");
    EXPECT_FALSE(plain.port);
    EXPECT_FALSE(plain.debug);
    const auto with_port = parsed(probe_request({{"module", "m"}, {"target", "127.0.0.1:2525"}}));
    EXPECT_EQ(with_port.host, "127.0.0.1");
    EXPECT_EQ(with_port.port, 2525);
    const auto v6 = parsed(probe_request({{"module", "m"}, {"target", "[::1]:587"}}));
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 587);
    const auto bare_v6 = parsed(probe_request({{"module", "m"}, {"target", "2001:db8::25"}}));
    EXPECT_EQ(bare_v6.host, "2001:db8::25");
    EXPECT_FALSE(bare_v6.port);
    EXPECT_TRUE(parsed(probe_request({{"module", "m"}, {"target", "h"}, {"debug", "true"}})).debug);
}

TEST(ProbeRequest, SaysWhatIsWrong) {
    EXPECT_EQ(problem_of(probe_request({{"target", "h"}})), "module parameter is missing");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}})), "target parameter is missing");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", ""}})),
              "target parameter is missing");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "h:0"}})),
              "invalid port \"0\"");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "h:65536"}})),
              "invalid port \"65536\"");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "h:25x"}})),
              "invalid port \"25x\"");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "[::1"}})),
              "missing ']' after the IPv6 address");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "[mx.example.net]:25"}})),
              "\"mx.example.net\" in brackets is not an IPv6 address");
    EXPECT_EQ(problem_of(probe_request({{"module", "m"}, {"target", "http://mx.example.net"}})),
              "invalid port \"//mx.example.net\"");
    for (const char* bad : {"mx example.net", "mx/1", "user@mx", "-mx", ".mx", "mx\r\n"}) {
        SCOPED_TRACE(bad);
        EXPECT_NE(
            problem_of(probe_request({{"module", "m"}, {"target", bad}})).find("is not a host"),
            std::string::npos);
    }
    EXPECT_NE(problem_of(probe_request({{"module", "m"}, {"target", "h"}, {"debug", "yes"}}))
                  .find("debug must be"),
              std::string::npos);
}

TEST(ProbeRequest, TheDeadlineFollowsTheScrapeTimeoutLessAnOffset) {
    const auto header = [](std::string value) {
        return parsed(probe_request({{"module", "m"}, {"target", "h"}},
                                    {{"x-prometheus-scrape-timeout-seconds", std::move(value)}}));
    };
    EXPECT_EQ(probe_timeout(header("10"), 30s), 9500ms);
    EXPECT_EQ(probe_timeout(header("2.5"), 30s), 2s);
    EXPECT_EQ(probe_timeout(header("10"), 3s), 3s) << "never more than the module's";
    EXPECT_EQ(probe_timeout(header("0.3"), 3s), 300ms) << "shorter than the offset: all of it";
    EXPECT_EQ(probe_timeout(parsed(probe_request({{"module", "m"}, {"target", "h"}})), 7s), 7s);
    for (const char* bad : {"", "ten", "-1", "0", "nan", "inf", "1e9", "5s"}) {
        SCOPED_TRACE(bad);
        EXPECT_NE(problem_of(probe_request({{"module", "m"}, {"target", "h"}},
                                           {{"x-prometheus-scrape-timeout-seconds", bad}}))
                      .find("X-Prometheus-Scrape-Timeout-Seconds"),
                  std::string::npos);
    }
}

// --- The exposition

TEST(ProbeMetrics, AFailedRunSaysWhichProbeFailedForWhatReason) {
    ProbeRuns runs;
    Scheduler::AskedRun connect;
    connect.metrics.ip_version = 6;
    connect.metrics.tls_version = "TLSv1.3";
    connect.metrics.cert_not_after = std::chrono::system_clock::time_point(1'900'000'000s);
    connect.metrics.add_phase(Phase::banner, 20ms);
    Scheduler::AskedRun auth;
    auth.result.outcome = Outcome::failed(FailureReason::auth_rejected, "535 no");
    runs.runs.push_back({"connect", std::move(connect)});
    runs.runs.push_back({"auth", std::move(auth)});
    runs.duration = 250ms;
    const std::string text = render_probe_metrics(runs);
    EXPECT_EQ(value_of(text, "probe_success"), 0);
    EXPECT_EQ(value_of(text, "probe_duration_seconds"), 0.25);
    EXPECT_EQ(value_of(text, "probe_ip_protocol"), 6);
    EXPECT_EQ(value_of(text, "probe_ssl_earliest_cert_expiry"), 1.9e9);
    EXPECT_EQ(value_of(text, R"(probe_tls_version_info{version="TLS 1.3"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_run_success{probe="connect"})"), 1);
    EXPECT_EQ(value_of(text, R"(mailcanary_probe_run_success{probe="auth"})"), 0);
    EXPECT_EQ(
        value_of(text,
                 R"(mailcanary_probe_run_phase_duration_seconds{phase="banner",probe="connect"})"),
        0.02);
    EXPECT_EQ(
        value_of(text, R"(mailcanary_probe_run_failure_info{probe="auth",reason="auth_rejected"})"),
        1);
    EXPECT_NE(text.find("# TYPE probe_success gauge"), std::string::npos);
}

TEST(ProbeMetrics, ASuccessHasNoFailureAndNoTlsFactsWithoutTls) {
    ProbeRuns runs;
    runs.runs.push_back({"connect", Scheduler::AskedRun()});
    const std::string text = render_probe_metrics(runs);
    EXPECT_EQ(value_of(text, "probe_success"), 1);
    EXPECT_EQ(value_of(text, "probe_ip_protocol"), 0);
    EXPECT_EQ(text.find("probe_tls_version_info"), std::string::npos);
    EXPECT_EQ(text.find("probe_ssl_earliest_cert_expiry"), std::string::npos);
    EXPECT_EQ(text.find("mailcanary_probe_run_failure_info"), std::string::npos);
}

// --- The endpoint's refusals

class ProbeEndpointTest : public testing::Test {
  protected:
    ProbeEndpointTest() {
        TargetConfig module;
        module.name = "smtp_starttls";
        module.probes = {"connect"};
        module.timeout = 5s;
        ProbeEndpointConfig config;
        config.allow = {"*.example.net"};
        config.min_interval_per_host = 10s;
        endpoint_.configure(config, {std::make_shared<CompiledTarget>(module)});
    }

    http::Response get(std::map<std::string, std::string> query, Clock::time_point now) {
        return endpoint_.handle(probe_request(std::move(query)), now);
    }

    // Never called: these tests stop before a run (a deferred response is not awaited).
    ProbeEndpoint endpoint_{[](std::shared_ptr<const CompiledTarget>, const ProbeKind&,
                               Clock::time_point) -> boost::asio::awaitable<Scheduler::AskedRun> {
        co_return Scheduler::AskedRun();
    }};
    const Clock::time_point start_{};
};

TEST_F(ProbeEndpointTest, AnUnknownModuleIsA400NamingTheKnownOnes) {
    const auto response = get({{"module", "smtp"}, {"target", "mx.example.net"}}, start_);
    EXPECT_EQ(response.status, 400u);
    EXPECT_NE(response.body.find("unknown module \"smtp\" (modules: smtp_starttls)"),
              std::string::npos)
        << response.body;
    EXPECT_FALSE(response.deferred);
}

TEST_F(ProbeEndpointTest, ATargetNotAllowedIsA400) {
    const auto response = get({{"module", "smtp_starttls"}, {"target", "127.0.0.1:25"}}, start_);
    EXPECT_EQ(response.status, 400u);
    EXPECT_NE(response.body.find("not allowed"), std::string::npos) << response.body;
    EXPECT_FALSE(response.deferred);
}

TEST_F(ProbeEndpointTest, ABadQueryIsA400) {
    const auto response = get({{"module", "smtp_starttls"}}, start_);
    EXPECT_EQ(response.status, 400u);
    EXPECT_EQ(response.body, "target parameter is missing\n");
}

TEST_F(ProbeEndpointTest, ASecondRunOnTheHostTooSoonIsA429) {
    const auto first = get({{"module", "smtp_starttls"}, {"target", "mx.example.net"}}, start_);
    EXPECT_TRUE(first.deferred) << first.body;
    const auto second =
        get({{"module", "smtp_starttls"}, {"target", "MX.example.net:25"}}, start_ + 4s);
    EXPECT_EQ(second.status, 429u);
    ASSERT_EQ(second.headers.size(), 1u);
    EXPECT_EQ(second.headers[0], (std::pair<std::string, std::string>("Retry-After", "6")));
    EXPECT_FALSE(second.deferred);
    EXPECT_TRUE(
        get({{"module", "smtp_starttls"}, {"target", "mx2.example.net"}}, start_ + 4s).deferred);
    EXPECT_TRUE(
        get({{"module", "smtp_starttls"}, {"target", "mx.example.net:587"}}, start_ + 4s).deferred)
        << "another port";
    EXPECT_TRUE(
        get({{"module", "smtp_starttls"}, {"target", "mx.example.net"}}, start_ + 10s).deferred);
}

TEST_F(ProbeEndpointTest, ARefusedRequestDoesNotCountAgainstTheHost) {
    EXPECT_EQ(get({{"module", "nope"}, {"target", "mx.example.net"}}, start_).status, 400u);
    EXPECT_TRUE(get({{"module", "smtp_starttls"}, {"target", "mx.example.net"}}, start_).deferred);
}

}  // namespace
}  // namespace mailcanary
