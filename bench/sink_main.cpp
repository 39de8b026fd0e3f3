// mailcanary-sink: the benchmark's SMTP server. See bench/sink.hpp and docs/benchmarks.md.
//
//   mailcanary-sink --listen=127.0.0.1:30025 --control=127.0.0.1:30026 --ca-out=/tmp/ca.pem
//                   [--banner-delay-ms=50] [--threads=1] [--rsa] [--no-starttls]
//                   [--user=bench --password=bench]
//
// The control port speaks lines: "stats" answers one line of JSON (sessions, QUITs, TLS
// handshakes, errors, the accept-to-banner times' p50/p99/max in microseconds, and the sink's own
// CPU seconds); "reset" clears the counters and times and answers "ok".
#include <utility>  // before Asio: g++ 12 needs std::exchange for awaitable.hpp

#include <csignal>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "bench/sink.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using mailcanary::bench::SinkOptions;
using mailcanary::bench::SmtpSink;

namespace {

tcp::endpoint parse_endpoint(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument("expected HOST:PORT");
    std::string host(text.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const unsigned long port = std::stoul(std::string(text.substr(colon + 1)));
    if (port > 65535) throw std::invalid_argument("port out of range");
    return {asio::ip::make_address(host), static_cast<unsigned short>(port)};
}

asio::awaitable<void> control_session(tcp::socket socket, SmtpSink& sink) {
    asio::streambuf buffer;
    for (;;) {
        boost::system::error_code ec;
        co_await asio::async_read_until(socket, buffer, '\n',
                                        asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        std::istream stream(&buffer);
        std::string line;
        std::getline(stream, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string answer;
        if (line == "stats") {
            answer = mailcanary::bench::stats_json(sink.stats()) + "\n";
        } else if (line == "reset") {
            sink.reset_stats();
            answer = "ok\n";
        } else {
            answer = "unknown command; use stats or reset\n";
        }
        co_await asio::async_write(socket, asio::buffer(answer),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
    }
}

asio::awaitable<void> control_loop(tcp::acceptor& acceptor, SmtpSink& sink) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        asio::co_spawn(acceptor.get_executor(), control_session(std::move(socket), sink),
                       asio::detached);
    }
}

int usage(const char* problem) {
    std::fprintf(stderr,
                 "mailcanary-sink: %s\n"
                 "usage: mailcanary-sink [--listen=HOST:PORT] [--control=HOST:PORT] "
                 "[--ca-out=PATH] [--banner-delay-ms=MS] [--threads=N] [--rsa] [--no-starttls] "
                 "[--user=NAME] [--password=SECRET]\n",
                 problem);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    SinkOptions options;
    options.listen = {asio::ip::make_address("127.0.0.1"), 30025};
    std::optional<tcp::endpoint> control;
    std::string ca_out;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            const auto value = [&](std::string_view name) -> std::optional<std::string_view> {
                if (arg.substr(0, name.size()) == name) return arg.substr(name.size());
                return std::nullopt;
            };
            if (auto v = value("--listen=")) {
                options.listen = parse_endpoint(*v);
            } else if (auto c = value("--control=")) {
                control = parse_endpoint(*c);
            } else if (auto p = value("--ca-out=")) {
                ca_out = std::string(*p);
            } else if (auto d = value("--banner-delay-ms=")) {
                options.banner_delay = std::chrono::microseconds(
                    static_cast<long long>(std::stod(std::string(*d)) * 1000.0));
            } else if (auto t = value("--threads=")) {
                options.threads = static_cast<unsigned>(std::stoul(std::string(*t)));
            } else if (arg == "--rsa") {
                options.rsa = true;
            } else if (arg == "--no-starttls") {
                options.starttls = false;
            } else if (auto u = value("--user=")) {
                options.username = std::string(*u);
            } else if (auto w = value("--password=")) {
                options.password = std::string(*w);
            } else if (arg == "--help" || arg == "-h") {
                usage("help");  // asked for: not an error
                return 0;
            } else {
                return usage(("unknown argument: " + std::string(arg)).c_str());
            }
        }
    } catch (const std::exception& error) {
        return usage(error.what());
    }

    try {
        SmtpSink sink(options);
        sink.start();
        if (!ca_out.empty()) {
            std::ofstream file(ca_out, std::ios::trunc);
            file << sink.ca_pem();
            if (!file) throw std::runtime_error("cannot write " + ca_out);
        }
        asio::io_context io(1);
        tcp::acceptor control_acceptor(io);
        if (control) {
            control_acceptor.open(control->protocol());
            control_acceptor.set_option(asio::socket_base::reuse_address(true));
            control_acceptor.bind(*control);
            control_acceptor.listen();
            asio::co_spawn(io, control_loop(control_acceptor, sink), asio::detached);
        }
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
        const auto endpoint = sink.local_endpoint();
        std::printf("listening on %s:%u threads=%u banner_delay_us=%lld starttls=%s\n",
                    endpoint.address().to_string().c_str(), endpoint.port(),
                    std::max(1U, options.threads),
                    static_cast<long long>(options.banner_delay.count()),
                    options.starttls ? "yes" : "no");
        std::fflush(stdout);
        io.run();
        sink.stop();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "mailcanary-sink: %s\n", error.what());
        return 1;
    }
    return 0;
}
