// mailcanary-http-load: drives blackbox_exporter's /probe at a fixed rate, as Prometheus would,
// and measures what Prometheus would see. Used only by the benchmark (bench/bench.py).
//
//   mailcanary-http-load --connect=127.0.0.1:30115
//       --path='/probe?target=127.0.0.1:30025&module=smtp_plain' --rate=500 --duration=10
//
// Request i is due at start + i/rate, whatever happened before it (a fixed-rate schedule, no
// catching up by bursts hidden in averages). Each request uses an idle keep-alive connection or
// opens one. It prints one line of JSON:
//   planned, completed, ok (probe_success 1), failed (probe_success 0), errors (HTTP or I/O),
//   lateness_ms (when the driver sent each request against its plan: must stay small for the
//   measurement to count), latency_ms (request sent to response read), overhead_ms (latency minus
//   the probe_duration_seconds the exporter reported: the exporter's own queueing and HTTP work),
//   probe_ms (probe_duration_seconds), each as p50/p99/max; and cpu_s, the driver's own CPU.
// --samples=PATH writes every reported probe_duration_seconds, one per line.
#include <utility>  // before Asio: g++ 12 needs std::exchange for awaitable.hpp

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

struct Options {
    tcp::endpoint server{asio::ip::make_address("127.0.0.1"), 30115};
    std::string path;
    double rate = 100;
    double duration = 10;
    double timeout = 5;
    std::string samples;
};

struct Connection {
    explicit Connection(asio::io_context& io) : stream(io) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
};

struct Results {
    std::uint64_t planned = 0;
    std::uint64_t completed = 0;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t errors = 0;
    std::vector<double> lateness_ms;
    std::vector<double> latency_ms;
    std::vector<double> overhead_ms;
    std::vector<double> probe_ms;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::optional<double> metric_value(std::string_view body, std::string_view name) {
    std::size_t at = 0;
    while (at < body.size()) {
        const auto end = body.find('\n', at);
        const std::string_view line =
            body.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        if (line.size() > name.size() && line.substr(0, name.size()) == name &&
            line[name.size()] == ' ') {
            return std::strtod(std::string(line.substr(name.size() + 1)).c_str(), nullptr);
        }
        if (end == std::string_view::npos) break;
        at = end + 1;
    }
    return std::nullopt;
}

class Driver {
  public:
    Driver(asio::io_context& io, Options options) : io_(io), options_(std::move(options)) {}

    asio::awaitable<void> run() {
        const auto period = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(1.0 / options_.rate));
        const auto total = static_cast<std::uint64_t>(options_.rate * options_.duration);
        const auto start = Clock::now() + std::chrono::milliseconds(100);
        asio::steady_timer timer(io_);
        for (std::uint64_t i = 0; i < total; ++i) {
            const auto planned = start + period * static_cast<Clock::rep>(i);
            timer.expires_at(planned);
            error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            results_.lateness_ms.push_back(ms(Clock::now() - planned));
            ++results_.planned;
            ++outstanding_;
            asio::co_spawn(io_, request(), asio::detached);
        }
        // Wait for the answers, at most one timeout past the last request.
        const auto give_up = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(options_.timeout + 1));
        while (outstanding_ > 0 && Clock::now() < give_up) {
            timer.expires_after(std::chrono::milliseconds(5));
            error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        for (auto& connection : idle_) {
            error_code ignored;
            connection->stream.socket().close(ignored);
        }
        idle_.clear();
        io_.stop();
    }

    const Results& results() const { return results_; }

  private:
    asio::awaitable<void> request() {
        const auto started = Clock::now();
        std::unique_ptr<Connection> connection;
        if (!idle_.empty()) {
            connection = std::move(idle_.back());
            idle_.pop_back();
        }
        error_code ec;
        const auto limit = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(options_.timeout));
        if (!connection) {
            connection = std::make_unique<Connection>(io_);
            connection->stream.expires_after(limit);
            co_await connection->stream.async_connect(options_.server,
                                                      asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) connection->stream.socket().set_option(tcp::no_delay(true), ec);
        }
        http::response<http::string_body> response;
        if (!ec) {
            http::request<http::empty_body> req{http::verb::get, options_.path, 11};
            req.set(http::field::host, options_.server.address().to_string() + ":" +
                                           std::to_string(options_.server.port()));
            req.set(http::field::user_agent, "Prometheus/2.42.0");
            req.set(http::field::accept,
                    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
            req.set("X-Prometheus-Scrape-Timeout-Seconds", std::to_string(options_.timeout));
            connection->stream.expires_after(limit);
            co_await http::async_write(connection->stream, req,
                                       asio::redirect_error(asio::use_awaitable, ec));
        }
        if (!ec) {
            co_await http::async_read(connection->stream, connection->buffer, response,
                                      asio::redirect_error(asio::use_awaitable, ec));
        }
        --outstanding_;
        if (ec || response.result() != http::status::ok) {
            ++results_.errors;
            co_return;
        }
        const double latency = ms(Clock::now() - started);
        ++results_.completed;
        results_.latency_ms.push_back(latency);
        const auto success = metric_value(response.body(), "probe_success");
        const auto duration = metric_value(response.body(), "probe_duration_seconds");
        if (success && *success == 1.0) {
            ++results_.ok;
        } else {
            ++results_.failed;
        }
        if (duration) {
            results_.probe_ms.push_back(*duration * 1000.0);
            results_.overhead_ms.push_back(latency - *duration * 1000.0);
        }
        if (response.keep_alive()) {
            connection->stream.expires_never();
            idle_.push_back(std::move(connection));
        }
    }

    asio::io_context& io_;
    Options options_;
    Results results_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::uint64_t outstanding_ = 0;
};

std::string summary(std::vector<double> values) {
    if (values.empty()) return "{\"n\":0}";
    std::sort(values.begin(), values.end());
    const auto at = [&](double p) {
        return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
    };
    char text[160];
    std::snprintf(text, sizeof text, "{\"n\":%zu,\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f}",
                  values.size(), at(0.5), at(0.99), values.back());
    return text;
}

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "mailcanary-http-load: %s\nusage: mailcanary-http-load --connect=HOST:PORT "
                 "--path=PATH --rate=PER_SECOND --duration=SECONDS [--timeout=SECONDS] "
                 "[--samples=FILE]\n",
                 problem.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            const auto value = [&](const std::string& name) -> std::optional<std::string> {
                if (arg.rfind(name, 0) == 0) return arg.substr(name.size());
                return std::nullopt;
            };
            if (auto c = value("--connect=")) {
                const auto colon = c->rfind(':');
                if (colon == std::string::npos) return usage("--connect needs HOST:PORT");
                options.server = {asio::ip::make_address(c->substr(0, colon)),
                                  static_cast<unsigned short>(std::stoul(c->substr(colon + 1)))};
            } else if (auto p = value("--path=")) {
                options.path = *p;
            } else if (auto r = value("--rate=")) {
                options.rate = std::stod(*r);
            } else if (auto d = value("--duration=")) {
                options.duration = std::stod(*d);
            } else if (auto t = value("--timeout=")) {
                options.timeout = std::stod(*t);
            } else if (auto s = value("--samples=")) {
                options.samples = *s;
            } else {
                return usage("unknown argument: " + arg);
            }
        }
    } catch (const std::exception& error) {
        return usage(error.what());
    }
    if (options.path.empty() || options.rate <= 0 || options.duration <= 0)
        return usage("--path, --rate and --duration are required");

    asio::io_context io(1);
    Driver driver(io, options);
    asio::co_spawn(io, driver.run(), asio::detached);
    io.run();

    const Results& r = driver.results();
    if (!options.samples.empty()) {
        std::ofstream file(options.samples, std::ios::trunc);
        for (const double value : r.probe_ms) file << value / 1000.0 << "\n";
    }
    rusage usage_self{};
    ::getrusage(RUSAGE_SELF, &usage_self);
    const double cpu =
        static_cast<double>(usage_self.ru_utime.tv_sec + usage_self.ru_stime.tv_sec) +
        static_cast<double>(usage_self.ru_utime.tv_usec + usage_self.ru_stime.tv_usec) / 1e6;
    std::printf(
        "{\"planned\":%llu,\"completed\":%llu,\"ok\":%llu,\"failed\":%llu,\"errors\":%llu,"
        "\"lateness_ms\":%s,\"latency_ms\":%s,\"overhead_ms\":%s,\"probe_ms\":%s,\"cpu_s\":%.4f}\n",
        static_cast<unsigned long long>(r.planned), static_cast<unsigned long long>(r.completed),
        static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.failed),
        static_cast<unsigned long long>(r.errors), summary(r.lateness_ms).c_str(),
        summary(r.latency_ms).c_str(), summary(r.overhead_ms).c_str(),
        summary(r.probe_ms).c_str(), cpu);
    return 0;
}
