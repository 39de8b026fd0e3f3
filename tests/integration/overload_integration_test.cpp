// Issue 17 end to end: the real agent with its default cap probes 2,000 servers that accept and
// never speak, seven that misbehave and the real Postfix, every 5 s with a 2 s timeout, on
// loopback. Every target must have a result within three intervals, the healthy one must keep
// its schedule, and the agent's memory and descriptors must stay bounded. Once under this
// machine's descriptor limit, once under a hard limit of 1,024 (a default cap of 352: overloaded
// until the silent servers back off).
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

#include "agent/descriptor_limit.hpp"
#include "integration/harness.hpp"
#include "integration/load_checks.hpp"
#include "support/fake_smtp_server.hpp"

namespace mailcanary::test {
namespace {

constexpr int kSilentTargets = 2000;
constexpr auto kInterval = 5s;
constexpr auto kResultsWithin = 3 * kInterval;
// The agent stays near 30 MB resident here. Built with AddressSanitizer (as this test is, then),
// its quarantine keeps up to 256 MB of freed memory and its shadow adds more: a bound that still
// catches memory growing with the runs.
#ifdef __SANITIZE_ADDRESS__
constexpr double kMostResidentBytes = 1e9;
#else
constexpr double kMostResidentBytes = 150e6;
#endif

// A loopback port nothing listens on: bound, then closed.
std::uint16_t closed_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
                       getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
    ::close(fd);
    if (!bound) throw std::runtime_error("no loopback port to close");
    return ntohs(address.sin_port);
}

std::string labels_of(const std::string& target) {
    return R"({probe="connect",target=")" + target + "\"}";
}

class OverloadIntegration : public AgentIntegration {
  protected:
    OverloadIntegration() { raise_own_descriptor_limit(); }

    std::string config() const {
        std::string text =
            "[metrics]\nphase_histograms = false\n\n[defaults]\ninterval = \"5s\"\n"
            "timeout = \"2s\"\nhelo = \"probe.mailcanary.test\"\n\n";
        const std::string silent_port = std::to_string(silent_.port());
        for (int i = 0; i < kSilentTargets; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "silent-%04d", i);
            text += target(name, silent_port, "none");
        }
        for (const auto& [name, server] : misbehaving_)
            text += target(name, std::to_string(server->port()), "none");
        text += target("refused", std::to_string(refused_port_), "none");
        text += target("postfix", port("MAILSTACK_SMTP_PORT"), "starttls", tls_options());
        return text;
    }

    std::vector<std::string> targets() const {
        std::vector<std::string> names;
        for (int i = 0; i < kSilentTargets; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "silent-%04d", i);
            names.emplace_back(name);
        }
        for (const auto& [name, server] : misbehaving_) names.push_back(name);
        names.emplace_back("refused");
        names.emplace_back("postfix");
        return names;
    }

    // What both tests must show; `report` says what was measured. `backing_off_at_least`: silent
    // targets that back off by the end (after one timeout, half of them: the others take the
    // intervals between).
    void check_common(const Watch& seen, const AgentProcess& agent, const std::string& report,
                      long backing_off_at_least) {
        const std::string& text = seen.last;
        const double limit = value_of(text, "mailcanary_probes_in_flight_limit");
        const auto limit_text = std::to_string(static_cast<long>(limit));
        std::printf(
            "%s: cap %s of %.0f descriptors; peaks: %.0f in flight, %.0f queued, %.0f "
            "descriptors, %.1f MB resident; every target had a result after %.1f s\n",
            report.c_str(), limit_text.c_str(), value_of(text, "process_max_fds"),
            seen.most_in_flight, seen.most_queued, seen.most_descriptors,
            seen.most_resident_bytes / 1e6,
            seen.all_reported ? std::chrono::duration<double>(*seen.all_reported).count() : -1.0);
        EXPECT_EQ(limit, default_max_concurrent_probes(
                             static_cast<std::uint64_t>(value_of(text, "process_max_fds"))));
        ASSERT_TRUE(seen.all_reported) << "some target never had a result";
        EXPECT_LE(*seen.all_reported, kResultsWithin);
        EXPECT_LE(seen.most_in_flight, limit);
        // A socket per run in flight, and the agent's own files and sockets.
        EXPECT_LE(seen.most_descriptors, seen.most_in_flight + 100);
        EXPECT_LT(seen.most_resident_bytes, kMostResidentBytes);

        // Each kind of server gave the result it should, however busy the agent was.
        const std::map<std::string, std::string> reasons{
            {"garbage", "protocol"},     {"busy", "banner_rejected"},
            {"hangs-up", "closed"},      {"mute-after-banner", "timeout"},
            {"drips", "banner_timeout"}, {"refused", "connect_refused"}};
        for (const auto& [name, reason] : reasons) {
            EXPECT_GE(value_of(text, R"(mailcanary_probe_failures_total{probe="connect",reason=")" +
                                         reason + R"(",target=")" + name + "\"}"),
                      1)
                << name;
        }
        EXPECT_EQ(value_of(text, "mailcanary_probe_success" + labels_of("slow-banner")), 1);
        EXPECT_EQ(value_of(text, "mailcanary_probe_success" + labels_of("postfix")), 1);
        // The silent ones only ever time out waiting for the banner: no run failed for want of a
        // descriptor (which would be `network` or `connect_*`).
        const auto failures = samples(text, "mailcanary_probe_failures_total");
        for (const auto& [labels, count] : failures) {
            if (labels.find("target=\"silent-") == std::string::npos) continue;
            EXPECT_NE(labels.find("reason=\"banner_timeout\""), std::string::npos) << labels;
        }
        // They back off.
        const auto backoffs = samples(text, "mailcanary_probe_backoff_seconds");
        const auto backing_off = std::count_if(backoffs.begin(), backoffs.end(), [](const auto& b) {
            return b.first.find("target=\"silent-") != std::string::npos && b.second > 0;
        });
        EXPECT_GE(backing_off, backing_off_at_least);
        EXPECT_EQ(backoffs.at(labels_of("postfix")), 0);
        EXPECT_EQ(agent.log().find("Too many open files"), std::string::npos);
    }

    // The healthy target's runs finish one interval apart (each within `tolerance` of it) from
    // `from` (milliseconds since the epoch) on; prints how far they strayed.
    void check_schedule(const AgentProcess& agent, double from, double tolerance_ms) {
        const auto finishes = successes_of(agent.log(), "postfix");
        std::vector<double> strays;
        for (std::size_t i = 1; i < finishes.size(); ++i) {
            if (finishes[i - 1] < from) continue;
            strays.push_back(std::abs(finishes[i] - finishes[i - 1] - 5000));
        }
        ASSERT_GE(strays.size(), 2u) << "too few runs of postfix to judge its schedule";
        std::sort(strays.begin(), strays.end());
        std::printf(
            "postfix: %zu intervals between runs, each within %.0f ms of 5 s (median %.0f "
            "ms)\n",
            strays.size(), strays.back(), strays[strays.size() / 2]);
        EXPECT_LE(strays.back(), tolerance_ms);
    }

    FakeSmtpServer silent_{{hang()}};
    std::vector<std::pair<std::string, std::unique_ptr<FakeSmtpServer>>> misbehaving_ = [] {
        std::vector<std::pair<std::string, std::unique_ptr<FakeSmtpServer>>> servers;
        const auto add = [&](std::string name, const std::vector<ScriptStep>& script) {
            servers.emplace_back(std::move(name), std::make_unique<FakeSmtpServer>(script));
        };
        add("garbage", {send("garbage\r\n"), hang()});
        add("busy", {send("421 4.3.2 too busy\r\n"), close()});
        add("hangs-up", {close()});
        add("mute-after-banner", {send("220 mute.test ESMTP\r\n"), hang()});
        add("drips", {send_dripped("220 drip.test ESMTP\r\n", 300ms), hang()});
        auto slow = FakeSmtpServer::healthy_script(false);
        slow.insert(slow.begin(), delay(1500ms));
        add("slow-banner", slow);
        return servers;
    }();
    std::uint16_t refused_port_ = closed_port();
};

double epoch_ms_now() {
    return std::chrono::duration<double, std::milli>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST_F(OverloadIntegration, WithTheDefaultCapEveryTargetHasAResultWithinThreeIntervals) {
    const auto started = Clock::now();
    AgentProcess agent(dir_, config());
    ASSERT_TRUE(agent.started()) << agent.log();
    const Watch seen = watch(agent, targets().size(), started, 3 * kInterval,
                             [](const Watch&, auto) { return false; });
    check_common(seen, agent, "this machine's descriptor limit", kSilentTargets / 4);
    check_schedule(agent, 0, 250);
    std::printf("schedule lateness p99 over all runs: %s\n",
                p99(seen.last, "mailcanary_schedule_lateness_seconds").c_str());
    // Some job's backoff shows on the status page's data.
    const auto status = http("GET", agent.url("/api/v1/status")).body;
    EXPECT_TRUE(std::regex_search(status, std::regex(R"("backoff_seconds":[0-9.]*[1-9])")))
        << status.substr(0, 2000);
}

// A hard limit of 1,024 descriptors makes a default cap of 352: 2,000 silent servers held for 2 s
// every 5 s want 800 slots until they back off.
TEST_F(OverloadIntegration, UnderALowDescriptorLimitTheCapFollowsAndEveryTargetStillRuns) {
    const fs::path prlimit = "/usr/bin/prlimit";  // util-linux, required in Debian
    ASSERT_TRUE(fs::exists(prlimit));
    const auto started = Clock::now();
    AgentProcess agent(dir_, config(), {prlimit.string(), "--nofile=512:1024", "--"});
    ASSERT_TRUE(agent.started()) << agent.log();
    // Watched until nothing has waited for a slot for three intervals and more: the silent servers
    // back off (every 4 intervals after two timeouts, about 28 s here).
    const auto settled_for = 3 * kInterval + 1s;
    const Watch seen =
        watch(agent, targets().size(), started, 9 * kInterval, [&](const Watch& so_far, auto now) {
            return so_far.most_queued > 0 && now - so_far.queue_last_seen > settled_for;
        });
    EXPECT_EQ(value_of(seen.last, "process_max_fds"), 1024) << "raised to the hard limit";
    check_common(seen, agent, "a hard limit of 1,024 descriptors", kSilentTargets / 2);
    ASSERT_GT(seen.most_queued, 0) << "the cap was meant to be reached";
    ASSERT_GT(Clock::now() - seen.queue_last_seen, settled_for) << "still overloaded at the end";
    // From then on the healthy target is on time.
    const double settled =
        epoch_ms_now() -
        std::chrono::duration<double, std::milli>(Clock::now() - seen.queue_last_seen).count();
    check_schedule(agent, settled, 250);
    double skips = 0;
    for (const auto& [labels, count] : samples(seen.last, "mailcanary_probe_skipped_total")) {
        if (labels.find("reason=\"concurrency\"") != std::string::npos) skips += count;
    }
    std::printf(
        "no run waited for a slot after %.1f s; runs skipped for concurrency: %.0f; "
        "schedule lateness p99 over all runs (waits for a slot included): %s\n",
        std::chrono::duration<double>(seen.queue_last_seen - started).count(), skips,
        p99(seen.last, "mailcanary_schedule_lateness_seconds").c_str());
}

// A cap set in the file is used as it is, even one the descriptor limit cannot carry: the agent
// says so.
TEST_F(AgentIntegration, AConfiguredCapIsHonouredAndOneTooLargeForTheDescriptorLimitIsLogged) {
    const fs::path prlimit = "/usr/bin/prlimit";
    ASSERT_TRUE(fs::exists(prlimit));
    AgentProcess agent(dir_, "[agent]\nmax_concurrent_probes = 5000\n",
                       {prlimit.string(), "--nofile=1024:1024", "--"});
    ASSERT_TRUE(agent.started()) << agent.log();
    EXPECT_EQ(value_of(agent.metrics(), "mailcanary_probes_in_flight_limit"), 5000);
    EXPECT_NE(agent.log().find("max_concurrent_probes is more than the descriptor limit leaves"),
              std::string::npos)
        << agent.log();
    agent.write_config("[agent]\nmax_concurrent_probes = 300\n");
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200);
    EXPECT_EQ(value_of(agent.metrics(), "mailcanary_probes_in_flight_limit"), 300);
    agent.write_config("");
    ASSERT_EQ(http("POST", agent.url("/-/reload")).status, 200);
    EXPECT_EQ(value_of(agent.metrics(), "mailcanary_probes_in_flight_limit"), 352)
        << "removed from the file: the default for 1,024 descriptors";
}

}  // namespace
}  // namespace mailcanary::test
