// What the tests of the agent under load share (overload_integration_test.cpp and
// silent_servers_integration_test.cpp): the test process's own descriptor limit, reading families
// and percentiles out of /metrics, watching the agent's peaks, and the times of a target's
// successful runs in the log.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/harness.hpp"

namespace mailcanary::test {

// The test process holds the silent servers' end of every connection the agent makes.
inline void raise_own_descriptor_limit() {
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    limit.rlim_cur = limit.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
}

// The samples of one family, by their labels (`{...}`).
inline std::map<std::string, double> samples(const std::string& exposition,
                                             const std::string& family) {
    std::map<std::string, double> found;
    std::istringstream lines(exposition);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with(family + "{")) continue;
        const auto space = line.rfind(' ');
        found[line.substr(family.size(), space - family.size())] =
            std::stod(line.substr(space + 1));
    }
    return found;
}

// The 99th percentile of a histogram without labels of its own, as the bound of its bucket:
// "<= 0.005 s", or "> 5 s" past the last finite bound.
inline std::string p99(const std::string& exposition, const std::string& histogram) {
    const double total = value_of(exposition, histogram + "_count");
    std::vector<std::pair<double, double>> bounds;  // (le, cumulative count)
    for (const auto& [labels, count] : samples(exposition, histogram + "_bucket")) {
        const std::string le = labels.substr(5, labels.size() - 7);  // {le="..."}
        if (le != "+Inf") bounds.emplace_back(std::stod(le), count);
    }
    std::sort(bounds.begin(), bounds.end());
    for (const auto& [le, count] : bounds) {
        if (count >= 0.99 * total) return "<= " + std::to_string(le) + " s";
    }
    return "> " + std::to_string(bounds.back().first) + " s";
}

// What a test saw of the agent while it watched.
struct Watch {
    std::string last;  // the last exposition
    double most_in_flight = 0;
    double most_queued = 0;
    double most_descriptors = 0;
    double most_resident_bytes = 0;
    std::optional<Clock::duration> all_reported;  // since the agent was started
    Clock::time_point queue_last_seen;
    int scrapes = 0;
    int failed_scrapes = 0;  // no answer, or not a 200
    Clock::duration longest_scrape{};
};

// Scrapes the agent every `period` from `started` until `done` says so or `at_most` has passed,
// noting the peaks and when each of the `targets` (a count) first had a result.
inline Watch watch(const AgentProcess& agent, std::size_t targets, Clock::time_point started,
                   Clock::duration at_most,
                   const std::function<bool(const Watch&, Clock::time_point)>& done,
                   Clock::duration period = 500ms) {
    Watch seen;
    for (auto now = Clock::now(); now < started + at_most && !done(seen, now); now = Clock::now()) {
        const HttpReply reply = http("GET", agent.url("/metrics"));
        ++seen.scrapes;
        seen.longest_scrape = std::max(seen.longest_scrape, Clock::now() - now);
        if (reply.status != 200) {
            ++seen.failed_scrapes;
            std::this_thread::sleep_until(now + period);
            continue;
        }
        seen.last = reply.body;
        seen.most_in_flight =
            std::max(seen.most_in_flight, value_of(seen.last, "mailcanary_probes_in_flight"));
        const double queued = value_of(seen.last, "mailcanary_probes_queued");
        seen.most_queued = std::max(seen.most_queued, queued);
        if (queued > 0) seen.queue_last_seen = now;
        seen.most_descriptors =
            std::max(seen.most_descriptors, value_of(seen.last, "process_open_fds"));
        seen.most_resident_bytes = std::max(seen.most_resident_bytes,
                                            value_of(seen.last, "process_resident_memory_bytes"));
        if (!seen.all_reported &&
            samples(seen.last, "mailcanary_probe_last_run_timestamp_seconds").size() == targets) {
            seen.all_reported = now - started;
        }
        std::this_thread::sleep_until(now + period);
    }
    return seen;
}

// When the log says `target` finished a successful run, in milliseconds since the epoch.
inline std::vector<double> successes_of(const std::string& log, const std::string& target) {
    std::vector<double> times;
    std::istringstream lines(log);
    const std::string needle = "msg=\"probe succeeded\" target=" + target + " ";
    for (std::string line; std::getline(lines, line);) {
        if (line.find(needle) == std::string::npos) continue;
        std::tm utc{};
        int millis = 0;
        if (std::sscanf(line.c_str(), "ts=%d-%d-%dT%d:%d:%d.%dZ", &utc.tm_year, &utc.tm_mon,
                        &utc.tm_mday, &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &millis) != 7) {
            continue;
        }
        utc.tm_year -= 1900;
        utc.tm_mon -= 1;
        times.push_back(static_cast<double>(timegm(&utc)) * 1000 + millis);
    }
    return times;
}

}  // namespace mailcanary::test
