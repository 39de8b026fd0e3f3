#include "agent/descriptor_limit.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/config.hpp"
#include "agent/http_server.hpp"

namespace mailcanary {
namespace {

// Standard streams, the event loop's own descriptors, the HTTP listeners, the log, files read
// at a reload (configuration, CA bundles, secrets), /proc reads for /metrics, libcurl's token
// requests: a few dozen, rounded up.
constexpr std::uint64_t kAgentDescriptors = 64;

}  // namespace

std::uint64_t raise_descriptor_limit(std::string& problem) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        problem = std::string("getrlimit: ") + std::strerror(errno);
        return 0;
    }
    // Linux refuses an unlimited RLIMIT_NOFILE; a hard limit that says so is left alone.
    if (limit.rlim_cur < limit.rlim_max && limit.rlim_max != RLIM_INFINITY) {
        const rlim_t before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            problem = std::string("setrlimit: ") + std::strerror(errno);
            return before;
        }
    }
    return limit.rlim_cur;
}

std::uint64_t descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    return limit.rlim_cur;
}

std::uint64_t descriptors_for_runs(std::uint64_t descriptors) {
    return descriptors - std::min<std::uint64_t>(kAgentDescriptors + http::Limits{}.max_connections,
                                                 descriptors / 2);
}

unsigned default_max_concurrent_probes(std::uint64_t descriptors) {
    return static_cast<unsigned>(std::clamp<std::uint64_t>(descriptors_for_runs(descriptors) / 2, 1,
                                                           kMaxConcurrentProbesLimit));
}

}  // namespace mailcanary
