// Where a protocol session goes and what bounds it: the server and its TLS, and the run's
// deadline, measurements, transcript and stop signal.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/stop_signal.hpp"
#include "common/transcript.hpp"
#include "protocols/ip_family.hpp"
#include "protocols/run_metrics.hpp"
#include "protocols/tls_options.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mailcanary {

class DnsResolver;

struct Endpoint {
    std::string host;
    uint16_t port = 0;
    TlsMode tls = TlsMode::none;
    TlsOptions tls_options;
    std::shared_ptr<boost::asio::ssl::context> tls_context;  // null when tls = none
    IpFamily family = IpFamily::any;
    // The agent's resolver, given at load; null: only an IP literal can be connected to.
    std::shared_ptr<DnsResolver> resolver = nullptr;
};

// One run's bounds and sinks, as a session driver needs them.
struct SessionRun {
    std::chrono::steady_clock::time_point deadline;
    RunMetrics& metrics;
    Transcript& transcript;
    StopSignal& stop;
};

}  // namespace mailcanary
