// A fast SMTP sink for benchmarks and tests: it answers every session at once (or after a fixed
// banner delay, the ground truth for accuracy measurements), speaks enough ESMTP for every probe
// (multi-line EHLO, STARTTLS with a certificate it makes itself, AUTH PLAIN and LOGIN,
// MAIL/RCPT/DATA, RSET, NOOP, QUIT), and measures itself, so that a benchmark can show the sink
// was never the bottleneck.
//
// Each worker thread has its own io_context and its own listening socket (SO_REUSEPORT), so the
// kernel spreads connections over the threads and no session ever crosses threads.
#pragma once

#include <utility>  // before Asio: g++ 12 needs std::exchange for awaitable.hpp

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mailcanary::bench {

struct SinkOptions {
    boost::asio::ip::tcp::endpoint listen{boost::asio::ip::make_address("127.0.0.1"), 0};
    std::chrono::microseconds banner_delay{0};
    unsigned threads = 1;
    bool starttls = true;         // offer STARTTLS (a certificate is made at start)
    bool rsa = false;             // RSA-2048 keys instead of ECDSA P-256
    std::string username = "bench";  // AUTH accepts exactly this user and password
    std::string password = "bench";
    std::string hostname = "sink.bench.test";
};

// What the sink saw since the last reset.
struct SinkStats {
    std::uint64_t sessions = 0;        // accepted connections
    std::uint64_t quits = 0;           // sessions that ended with QUIT
    std::uint64_t tls_handshakes = 0;  // successful STARTTLS handshakes
    std::uint64_t tls_failures = 0;
    std::uint64_t auths = 0;           // successful AUTH
    std::uint64_t messages = 0;        // messages accepted after DATA
    std::uint64_t errors = 0;          // sessions ended by an I/O error other than a clean close
    std::vector<std::uint32_t> banner_us;  // per session: accept to banner written, microseconds
};

class SmtpSink {
  public:
    explicit SmtpSink(SinkOptions options);
    ~SmtpSink();
    SmtpSink(const SmtpSink&) = delete;
    SmtpSink& operator=(const SmtpSink&) = delete;

    // Binds, listens and starts the worker threads. Throws on failure.
    void start();
    // Stops accepting, ends every session and joins the threads.
    void stop();

    boost::asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }
    // The PEM of the CA that signed the server certificate: what clients should trust.
    const std::string& ca_pem() const { return ca_pem_; }

    SinkStats stats() const;
    void reset_stats();

    struct Worker;

  private:
    SinkOptions options_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::string ca_pem_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
};

// The stats as one line of JSON, with the banner times' percentiles, plus the process's CPU.
std::string stats_json(const SinkStats& stats);

}  // namespace mailcanary::bench
