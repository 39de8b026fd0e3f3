// Issue 15, MX-aware targets, against the stack's unbound serving canary.test
// (tests/stack/mailstack.sh): `mx = "canary.test"` probes both MX hosts (mail, preference 10, and
// v4only, 20) on the real Postfix, each its own series labelled mx_host; a domain without MX,
// with the null MX of RFC 7505 or that does not exist has one failing series (mx_none, dns).
#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class MxIntegration : public AgentIntegration {
  protected:
    std::string dns_server() const { return "127.0.0.1:" + port("MAILSTACK_DNS_PORT"); }
    std::string agent_table() const {
        return "[agent]\ndns_servers = [\"" + dns_server() + "\"]\n\n";
    }
    // A connect target on the stack's plain SMTP port of every MX host of `domain`.
    std::string mx_target(const std::string& name, const std::string& domain,
                          const std::string& extra = "") const {
        return "[[targets]]\nname = \"" + name + "\"\nmx = \"" + domain +
               "\"\nport = " + port("MAILSTACK_SMTP_PORT") + "\ntls = \"none\"\n" + extra + "\n";
    }
    // The MovingZone's port (after the stack's DNS port), and an agent asking it for the MX
    // hosts of moving.test.
    std::string moving_zone_port() const {
        return std::to_string(std::stoi(port("MAILSTACK_DNS_PORT")) + 1);
    }
    std::string moving_config(const std::string& dns_server) const {
        return "[agent]\ndns_servers = [\"" + dns_server + "\"]\n\n" + header() +
               mx_target("moving", "moving.test");
    }
};

std::string mx_series(const std::string& metric, const std::string& target,
                      const std::string& mx_host) {
    return metric + R"({mx_host=")" + mx_host + R"(",probe="connect",target=")" + target + "\"}";
}

TEST_F(MxIntegration, ProbesEveryMxHostAsItsOwnSeries) {
    AgentProcess agent(dir_, agent_table() + header() + mx_target("domain", "canary.test"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto mail = mx_series("mailcanary_probe_success", "domain", "mail.canary.test");
    const auto v4only = mx_series("mailcanary_probe_success", "domain", "v4only.canary.test");
    const std::string text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, mail) >= 0 && value_of(t, v4only) >= 0; },
        20s);
    // Both MX hosts connect to the real Postfix, each under its own series.
    EXPECT_EQ(value_of(text, mail), 1) << text;
    EXPECT_EQ(value_of(text, v4only), 1) << text;
    EXPECT_EQ(value_of(text, success_series("domain")), -1) << "no unlabelled series\n" << text;
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_mx_host_info{mx_host="mail.canary.test",preference="10",target="domain"})"),
        1)
        << text;
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_mx_host_info{mx_host="v4only.canary.test",preference="20",target="domain"})"),
        1)
        << text;
    EXPECT_EQ(value_of(text, R"(mailcanary_mx_hosts_dropped{target="domain"})"), 0) << text;
    EXPECT_EQ(value_of(text, R"(mailcanary_targets)"), 1) << text;

    // The transcript of each names its host; the status API lists both instances, by preference.
    const auto v4only_run =
        http("GET", agent.url("/results?target=domain&probe=connect&mx_host=v4only.canary.test"))
            .body;
    EXPECT_NE(v4only_run.find("v4only.canary.test A 127.0.0.1 from " + dns_server()),
              std::string::npos)
        << v4only_run;
    const auto status = http("GET", agent.url("/api/v1/results?target=domain")).body;
    const auto first = status.find(R"("labels":{"mx_host":"mail.canary.test"})");
    const auto second = status.find(R"("labels":{"mx_host":"v4only.canary.test"})");
    EXPECT_NE(first, std::string::npos) << status;
    EXPECT_NE(second, std::string::npos) << status;
    EXPECT_LT(first, second) << status;
}

TEST_F(MxIntegration, IpBothLabelsEachHostAndFamily) {
    AgentProcess agent(
        dir_, agent_table() + header() + mx_target("domain", "canary.test", "ip = \"both\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto series = [](const std::string& family, const std::string& host) {
        return R"(mailcanary_probe_success{ip_family=")" + family + R"(",mx_host=")" + host +
               R"(",probe="connect",target="domain"})";
    };
    const std::string text = agent.wait_for(
        [&](const std::string& t) {
            return value_of(t, series("v6", "v4only.canary.test")) >= 0 &&
                   value_of(t, series("v6", "mail.canary.test")) >= 0;
        },
        20s);
    EXPECT_EQ(value_of(text, series("v4", "mail.canary.test")), 1) << text;
    EXPECT_EQ(value_of(text, series("v6", "mail.canary.test")), 1) << text;
    EXPECT_EQ(value_of(text, series("v4", "v4only.canary.test")), 1) << text;
    EXPECT_EQ(value_of(text, series("v6", "v4only.canary.test")), 0) << "no AAAA\n" << text;
}

TEST_F(MxIntegration, NoMxNullMxAndNoDomainFailOneSeriesEach) {
    AgentProcess agent(dir_, agent_table() + header() + mx_target("nomx", "nomx.canary.test") +
                                 mx_target("nullmx", "nullmx.canary.test") +
                                 mx_target("nodomain", "nope.canary.test"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string text = agent.wait_for(each_reported({"nomx", "nullmx", "nodomain"}), 20s);
    for (const std::string target : {"nomx", "nullmx", "nodomain"}) {
        EXPECT_EQ(value_of(text, success_series(target)), 0) << target << "\n" << text;
        EXPECT_EQ(text.find(R"(mailcanary_mx_host_info{mx_host=)"), std::string::npos) << text;
    }
    EXPECT_GE(value_of(text, failure_series("nomx", "mx_none")), 1) << text;
    EXPECT_GE(value_of(text, failure_series("nullmx", "mx_none")), 1) << text;
    EXPECT_GE(value_of(text, failure_series("nodomain", "dns")), 1) << text;
    EXPECT_EQ(value_of(text, failure_series("nodomain", "mx_none")), -1) << text;

    const auto nomx = http("GET", agent.url("/results?target=nomx&probe=connect")).body;
    EXPECT_NE(nomx.find("nomx.canary.test: no MX record (NODATA from " + dns_server() + ")"),
              std::string::npos)
        << nomx;
    const auto nullmx = http("GET", agent.url("/results?target=nullmx&probe=connect")).body;
    EXPECT_NE(nullmx.find("nullmx.canary.test has a null MX (RFC 7505"), std::string::npos)
        << nullmx;
    const auto nodomain = http("GET", agent.url("/results?target=nodomain&probe=connect")).body;
    EXPECT_NE(nodomain.find("looking up the MX records of nope.canary.test: NXDOMAIN from " +
                            dns_server()),
              std::string::npos)
        << nodomain;
}

// Runs that cannot connect (no MX host) spend no connection budget, so none is held back: each
// fails with mx_none, also past a budget of one connection a minute.
TEST_F(MxIntegration, ADomainWithoutMxHostIsNeverHeldBackByABudget) {
    AgentProcess agent(
        dir_, agent_table() + header() +
                  mx_target("nomx", "nomx.canary.test", "max_connections_per_minute = 1\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string text = agent.wait_for(
        [](const std::string& t) { return value_of(t, failure_series("nomx", "mx_none")) >= 3; },
        20s);
    EXPECT_GE(value_of(text, failure_series("nomx", "mx_none")), 3) << text;
    EXPECT_EQ(
        text.find(R"(mailcanary_probe_skipped_total{probe="connect",reason="connection_budget")"),
        std::string::npos)
        << text;
}

// A reload that keeps the domain keeps the MX hosts' series (their counters go on); one that
// points `mx` at a domain without MX removes them for the one failing series.
TEST_F(MxIntegration, ReloadKeepsStayingHostsAndRemovesGoneOnes) {
    const std::string config = agent_table() + header() + mx_target("domain", "canary.test");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto runs = mx_series("mailcanary_probe_runs_total", "domain", "mail.canary.test");
    std::string text =
        agent.wait_for([&](const std::string& t) { return value_of(t, runs) >= 2; }, 20s);
    const double before = value_of(text, runs);
    ASSERT_GE(before, 2) << text;

    agent.write_config(config + "# touched\n");
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200);
    text = http("GET", agent.url("/metrics")).body;
    EXPECT_GE(value_of(text, runs), before) << "the counter went on\n" << text;

    agent.write_config(agent_table() + header() + mx_target("domain", "nomx.canary.test"));
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200);
    // Both awaited: a scrape renders family after family while the loop goes on, so one may
    // show the first failure of the stand-in (it runs at once) and still the hosts' info.
    text = agent.wait_for(
        [](const std::string& t) {
            return value_of(t, failure_series("domain", "mx_none")) >= 1 &&
                   t.find("mailcanary_mx_host_info{") == std::string::npos;
        },
        20s);
    EXPECT_GE(value_of(text, failure_series("domain", "mx_none")), 1) << text;
    EXPECT_EQ(value_of(text, runs), -1) << "gone with its host\n" << text;
    EXPECT_EQ(text.find("mailcanary_mx_host_info{"), std::string::npos) << text;
}

// A zone whose MX set the test changes: an unbound of its own (the stack's zone is shared by
// every test), on the port after the stack's DNS port, reloaded with SIGHUP.
class MovingZone {
  public:
    MovingZone(fs::path dir, std::string port) : dir_(std::move(dir)), port_(std::move(port)) {}
    ~MovingZone() { stop(); }
    MovingZone(const MovingZone&) = delete;
    MovingZone& operator=(const MovingZone&) = delete;

    std::string server() const { return "127.0.0.1:" + port_; }

    // No server on the port any more: every lookup fails (refused) until `serve` starts one.
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    // Serves moving.test with these MX records ("10 a.moving.test.", with this TTL), whose
    // hosts a and b are the stack on 127.0.0.1; started at the first call, reloaded at the next.
    bool serve(const std::vector<std::string>& mx_records, int mx_ttl = 300) {
        const fs::path conf = dir_ / "moving-unbound.conf";
        std::ofstream out(conf);
        out << "server:\n  interface: 127.0.0.1@" << port_ << "\n  port: " << port_
            << "\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \""
            << dir_.string() << "\"\n  pidfile: \"" << (dir_ / "moving-unbound.pid").string()
            << "\"\n  use-syslog: no\n  logfile: \"" << (dir_ / "moving-unbound.log").string()
            << "\"\n  num-threads: 1\n  module-config: \"iterator\"\n"
               "  access-control: 127.0.0.0/8 allow\n"
               "  local-zone: \"moving.test.\" static\n"
               "  local-data: \"a.moving.test. 300 IN A 127.0.0.1\"\n"
               "  local-data: \"b.moving.test. 300 IN A 127.0.0.1\"\n";
        for (const std::string& record : mx_records)
            out << "  local-data: \"moving.test. " << mx_ttl << " IN MX " << record << "\"\n";
        out << "remote-control:\n  control-enable: no\n";
        out.close();
        if (pid_ > 0) return kill(pid_, SIGHUP) == 0;
        std::string conf_path = conf.string();
        std::vector<char*> argv{const_cast<char*>("unbound"), const_cast<char*>("-d"),
                                const_cast<char*>("-c"), conf_path.data(), nullptr};
        if (posix_spawnp(&pid_, "unbound", nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
        // Serving once it accepts on TCP (it serves both).
        for (int attempt = 0; pid_ > 0 && attempt < 100; ++attempt) {
            const int fd = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_port = htons(static_cast<uint16_t>(std::stoi(port_)));
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            const bool up = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
            close(fd);
            if (up) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

  private:
    fs::path dir_;
    std::string port_;
    pid_t pid_ = -1;
};

// A change of the MX set in DNS: counted, the new host probed, the staying one's series go on.
TEST_F(MxIntegration, AChangedMxSetIsCountedAndFollowed) {
    MovingZone zone(dir_, moving_zone_port());
    ASSERT_TRUE(zone.serve({"10 a.moving.test."})) << read_file(dir_ / "moving-unbound.log");
    AgentProcess agent(dir_, moving_config(zone.server()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto changes = R"(mailcanary_mx_changes_total{target="moving"})";
    const auto a_runs = mx_series("mailcanary_probe_runs_total", "moving", "a.moving.test");
    const auto b_success = mx_series("mailcanary_probe_success", "moving", "b.moving.test");
    std::string text =
        agent.wait_for([&](const std::string& t) { return value_of(t, a_runs) >= 2; }, 20s);
    ASSERT_GE(value_of(text, a_runs), 2) << text;
    EXPECT_EQ(value_of(text, changes), 0) << text;
    EXPECT_EQ(value_of(text, b_success), -1) << text;
    const double a_before = value_of(text, a_runs);

    ASSERT_TRUE(zone.serve({"10 a.moving.test.", "20 b.moving.test."}));
    text = agent.wait_for(
        [&](const std::string& t) {
            return value_of(t, b_success) == 1 && value_of(t, a_runs) > a_before;
        },
        20s);
    EXPECT_EQ(value_of(text, changes), 1) << text;
    EXPECT_EQ(value_of(text, b_success), 1) << text;
    EXPECT_GT(value_of(text, a_runs), a_before) << "a's counter went on\n" << text;
    EXPECT_EQ(
        value_of(
            text,
            R"(mailcanary_mx_host_info{mx_host="b.moving.test",preference="20",target="moving"})"),
        1)
        << text;
}

// A DNS server out past the MX answer's TTL (1 s) says nothing about the MX set: the hosts last
// answered stay, each failing with dns (a sending MTA could not find them either), and their
// counters go on when it is back; no change.
TEST_F(MxIntegration, AResolverOutageFailsTheKnownHostsWithDnsAndKeepsTheirSeries) {
    MovingZone zone(dir_, moving_zone_port());
    const std::vector<std::string> records{"10 a.moving.test."};
    ASSERT_TRUE(zone.serve(records, 1)) << read_file(dir_ / "moving-unbound.log");
    AgentProcess agent(dir_, moving_config(zone.server()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto runs = mx_series("mailcanary_probe_runs_total", "moving", "a.moving.test");
    const auto success = mx_series("mailcanary_probe_success", "moving", "a.moving.test");
    const auto dns_failures =
        R"(mailcanary_probe_failures_total{mx_host="a.moving.test",probe="connect",reason="dns",target="moving"})";
    std::string text =
        agent.wait_for([&](const std::string& t) { return value_of(t, runs) >= 2; }, 20s);
    ASSERT_EQ(value_of(text, success), 1) << text;

    zone.stop();
    text =
        agent.wait_for([&](const std::string& t) { return value_of(t, dns_failures) >= 1; }, 20s);
    EXPECT_GE(value_of(text, dns_failures), 1) << text;
    EXPECT_EQ(value_of(text, success), 0) << text;
    EXPECT_EQ(value_of(text, success_series("moving")), -1) << "no unlabelled series\n" << text;
    const double during = value_of(text, runs);
    const auto transcript =
        http("GET", agent.url("/results?target=moving&probe=connect&mx_host=a.moving.test")).body;
    EXPECT_NE(transcript.find("looking up the MX records of moving.test"), std::string::npos)
        << transcript;

    ASSERT_TRUE(zone.serve(records, 1)) << read_file(dir_ / "moving-unbound.log");
    text = agent.wait_for([&](const std::string& t) { return value_of(t, success) == 1; }, 20s);
    EXPECT_EQ(value_of(text, success), 1) << text;
    EXPECT_GT(value_of(text, runs), during) << "the counter went on\n" << text;
    EXPECT_EQ(value_of(text, R"(mailcanary_mx_changes_total{target="moving"})"), 0) << text;
}

// A DNS server out while the MX answer's TTL (300 s) lasts: a resolver would answer from its
// cache, so the hosts are probed as before, and the failed lookups are only logged.
TEST_F(MxIntegration, AResolverOutageWithinTheTtlKeepsProbingTheHosts) {
    MovingZone zone(dir_, moving_zone_port());
    ASSERT_TRUE(zone.serve({"10 a.moving.test."})) << read_file(dir_ / "moving-unbound.log");
    AgentProcess agent(dir_, moving_config(zone.server()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto runs = mx_series("mailcanary_probe_runs_total", "moving", "a.moving.test");
    const auto success = mx_series("mailcanary_probe_success", "moving", "a.moving.test");
    std::string text =
        agent.wait_for([&](const std::string& t) { return value_of(t, runs) >= 2; }, 20s);
    ASSERT_EQ(value_of(text, success), 1) << text;

    zone.stop();
    ASSERT_TRUE(agent.wait_for_log("MX lookup failed", 20s)) << agent.log();
    const double after_failure = value_of(http("GET", agent.url("/metrics")).body, runs);
    text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, runs) >= after_failure + 2; }, 20s);
    EXPECT_EQ(value_of(text, success), 1) << text;
    EXPECT_EQ(text.find(R"(reason="dns")"), std::string::npos) << text;
}

// `mailcanary --probe`: every MX host, one after the other; a domain without MX fails at once.
TEST_F(MxIntegration, OneShotProbeRunsEveryMxHost) {
    const fs::path config = dir_ / "oneshot.toml";
    std::ofstream(config) << agent_table() << header() << mx_target("domain", "canary.test")
                          << mx_target("nullmx", "nullmx.canary.test");
    auto run = run_binary({"--config.file=" + config.string(), "--probe=domain"}, dir_ / "ok.txt");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const auto mail = run.output.find(R"(domain{mx_host="mail.canary.test"}/connect: success)");
    const auto v4only = run.output.find(R"(domain{mx_host="v4only.canary.test"}/connect: success)");
    EXPECT_NE(mail, std::string::npos) << run.output;
    EXPECT_NE(v4only, std::string::npos) << run.output;
    EXPECT_LT(mail, v4only) << "by preference\n" << run.output;
    run = run_binary({"--config.file=" + config.string(), "--probe=nullmx"}, dir_ / "null.txt");
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("failed: mx_none"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("null MX (RFC 7505"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace mailcanary::test
