#include "agent/http_server.hpp"

#include "agent/basic_auth.hpp"
#include "agent/tls_server.hpp"
#include "protocols/sasl.hpp"
#include "support/files.hpp"
#include "support/test_pki.hpp"

#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace mailcanary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using ClientResponse = bhttp::response<bhttp::string_body>;

// Echoes what the handler saw, so the tests can check routing and decoding from the response.
Response echo(const Request& request) {
    if (request.path == "/throw") {
        throw std::runtime_error("handler bug");
    }
    if (request.path == "/bad-status") {
        Response invalid;
        invalid.status = 1000;
        return invalid;
    }
    Response response;
    response.body = request.method + " " + request.path;
    for (const auto& [key, value] : request.query) {
        response.body += " [" + key + "=" + value + "]";
    }
    if (!request.body.empty()) {
        response.body += " body=" + request.body;
    }
    response.headers.emplace_back("X-Test", "yes");
    return response;
}

// A client on the server's io_context: each call runs the context until its own operation is
// done, so the server makes progress in between (single-threaded, like the agent).
class Client {
  public:
    explicit Client(asio::io_context& context) : context_(context), stream_(context) {}

    beast::error_code connect(const tcp::endpoint& endpoint) {
        return run([&](auto done) { stream_.async_connect(endpoint, done); });
    }

    beast::error_code send(std::string_view bytes) {
        return run([&](auto done) { asio::async_write(stream_, asio::buffer(bytes), done); });
    }

    // `head`: the response is to a HEAD request, so it has no body whatever its Content-Length.
    ClientResponse receive(bool head = false) {
        bhttp::response_parser<bhttp::string_body> parser;
        parser.skip(head);
        last_error_ = run([&](auto done) { bhttp::async_read(stream_, buffer_, parser, done); });
        return last_error_ ? ClientResponse() : parser.release();
    }

    ClientResponse request(std::string_view bytes, bool head = false) {
        last_error_ = send(bytes);
        return last_error_ ? ClientResponse() : receive(head);
    }

    // True when the server closed the connection (end of stream or reset) within the timeout.
    bool closed_by_server() {
        char byte = 0;
        const auto ec =
            run([&](auto done) { stream_.async_read_some(asio::buffer(&byte, 1), done); });
        return ec && ec != beast::error::timeout;
    }

    beast::error_code last_error() const { return last_error_; }

  private:
    template <typename Start>
    beast::error_code run(Start start) {
        std::optional<beast::error_code> result;
        stream_.expires_after(3s);
        start([&result](beast::error_code ec, auto&&...) { result = ec; });
        context_.restart();
        while (!result && context_.run_one() > 0) {
        }
        return result.value_or(asio::error::operation_aborted);
    }

    asio::io_context& context_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    beast::error_code last_error_;
};

class HttpServerTest : public ::testing::Test {
  protected:
    void start(Limits limits = {}, std::string address = "127.0.0.1:0", Handler handler = echo,
               asio::any_io_executor render_executor = {}) {
        server_.emplace(context_.get_executor(), std::move(handler), limits,
                        std::move(render_executor));
        ASSERT_TRUE(server_->listen({std::move(address)}).empty());
        ASSERT_EQ(server_->local_endpoints().size(), 1u);
        endpoint_ = server_->local_endpoints().front();
    }

    Client connect() {
        Client client(context_);
        EXPECT_FALSE(client.connect(endpoint_));
        return client;
    }

    // Runs the io_context until it has no work left; returns how long that took.
    std::chrono::steady_clock::duration run_to_completion() {
        const auto start = std::chrono::steady_clock::now();
        context_.restart();
        context_.run_for(5s);
        EXPECT_TRUE(context_.stopped()) << "the server left work in the io_context";
        return std::chrono::steady_clock::now() - start;
    }

    asio::io_context context_;
    std::optional<Server> server_;
    tcp::endpoint endpoint_;
};

TEST_F(HttpServerTest, GetPassesPathAndDecodedQueryToTheHandler) {
    start();
    Client client = connect();
    const auto response = client.request(
        "GET /metrics?a=1&b=hello+world&c=%41%2f&d&&e=%zz&a=2&f=%4 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_EQ(response.body(), "GET /metrics [a=1] [b=hello world] [c=A/] [d=] [e=%zz] [f=%4]");
    EXPECT_EQ(response[bhttp::field::server], "mailcanary");
    EXPECT_EQ(response[bhttp::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(response[bhttp::field::content_length], std::to_string(response.body().size()));
    EXPECT_EQ(response["X-Test"], "yes");
}

TEST_F(HttpServerTest, HeadIsAnsweredLikeGetWithoutTheBody) {
    start();
    Client client = connect();
    const auto head = client.request("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n", true);
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(head.result_int(), 200u);
    EXPECT_EQ(head[bhttp::field::content_length], std::to_string(std::string("GET /x").size()));
    EXPECT_TRUE(head.body().empty());
    // Had the server sent a body, it would be read here as the start of the next response.
    const auto get = client.request("GET /y HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(get.body(), "GET /y");
}

TEST_F(HttpServerTest, PostBodyReachesTheHandler) {
    start();
    Client client = connect();
    const auto response =
        client.request("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.body(), "POST /submit body=hello");
}

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponse) {
    start();
    Client client = connect();
    const auto interim = client.request(
        "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(interim.result_int(), 100u);
    const auto response = client.request("hi");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.body(), "POST /p body=hi");
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    start();
    Client client = connect();
    EXPECT_EQ(client.request("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /1");
    EXPECT_EQ(client.request("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /2");
    // Pipelined: both requests in one write, answered in order.
    EXPECT_FALSE(
        client.send("GET /3 HTTP/1.1\r\nHost: x\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(client.receive().body(), "GET /3");
    EXPECT_EQ(client.receive().body(), "GET /4");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10AreHonoured) {
    start();
    Client closing = connect();
    const auto response = closing.request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_FALSE(response.keep_alive());
    EXPECT_TRUE(closing.closed_by_server());

    Client old = connect();
    EXPECT_EQ(old.request("GET /old HTTP/1.0\r\n\r\n").body(), "GET /old");
    EXPECT_TRUE(old.closed_by_server());
}

TEST_F(HttpServerTest, HandlerExceptionsAndInvalidStatusesBecome500) {
    start();
    Client client = connect();
    EXPECT_EQ(client.request("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 500u);
    EXPECT_EQ(client.request("GET /bad-status HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 500u);
    EXPECT_EQ(client.request("GET /fine HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200u);
}

TEST_F(HttpServerTest, BodiesToRenderAreMadeOffTheLoopWhileItServesOthers) {
    asio::thread_pool render_pool(1);
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> rendering{false};
    std::thread::id rendered_on;
    start(
        {}, "127.0.0.1:0",
        [&](const Request& request) {
            if (request.path != "/slow") return echo(request);
            Response response;
            response.render_body = [&] {
                rendered_on = std::this_thread::get_id();
                rendering = true;
                released.wait();
                return std::string("rendered");
            };
            return response;
        },
        render_pool.get_executor());

    Client slow = connect();
    EXPECT_FALSE(slow.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    while (!rendering) context_.run_for(10ms);
    // The render is blocked: the loop still answers another client.
    Client other = connect();
    EXPECT_EQ(other.request("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /fast");
    release.set_value();
    const auto response = slow.receive();
    ASSERT_FALSE(slow.last_error()) << slow.last_error().message();
    EXPECT_EQ(response.body(), "rendered");
    EXPECT_NE(rendered_on, std::this_thread::get_id());
    // HEAD: the rendered body's length, no body.
    const auto head = slow.request("HEAD /slow HTTP/1.1\r\nHost: x\r\n\r\n", true);
    EXPECT_EQ(head[bhttp::field::content_length], "8");
    EXPECT_TRUE(head.body().empty());
}

TEST_F(HttpServerTest, DeferredResponsesWaitWithoutHoldingTheLoop) {
    asio::steady_timer finish(context_);
    finish.expires_at(asio::steady_timer::time_point::max());
    start({}, "127.0.0.1:0", [&](const Request& request) {
        if (request.path != "/later") return echo(request);
        Response response;
        response.deferred =
            [&finish, header = request.headers.at("x-wait-for")]() -> asio::awaitable<Response> {
            boost::system::error_code ignored;
            co_await finish.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
            co_return plain_text(202, "waited for " + header);
        };
        return response;
    });
    Client later = connect();
    EXPECT_FALSE(later.send("GET /later HTTP/1.1\r\nHost: x\r\nX-Wait-For: the timer\r\n\r\n"));
    context_.run_for(50ms);
    // The deferred response waits on the loop: another client is still answered.
    Client other = connect();
    EXPECT_EQ(other.request("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /fast");
    finish.cancel();
    const auto response = later.receive();
    ASSERT_FALSE(later.last_error()) << later.last_error().message();
    EXPECT_EQ(response.result_int(), 202u);
    EXPECT_EQ(response.body(), "waited for the timer");
}

TEST_F(HttpServerTest, AFailedDeferredResponseBecomes500) {
    start({}, "127.0.0.1:0", [](const Request&) {
        Response response;
        response.deferred = []() -> asio::awaitable<Response> {
            throw std::runtime_error("deferred bug");
            co_return Response();
        };
        return response;
    });
    Client client = connect();
    EXPECT_EQ(client.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 500u);
}

TEST_F(HttpServerTest, BodiesToRenderAreMadeInlineWithoutARenderExecutor) {
    start({}, "127.0.0.1:0", [](const Request&) {
        Response response;
        response.render_body = [] { return std::string("inline"); };
        return response;
    });
    Client client = connect();
    EXPECT_EQ(client.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n").body(), "inline");
}

TEST_F(HttpServerTest, AFailedRenderBecomes500) {
    asio::thread_pool render_pool(1);
    start(
        {}, "127.0.0.1:0",
        [](const Request& request) {
            if (request.path != "/broken") return echo(request);
            Response response;
            response.render_body = []() -> std::string { throw std::runtime_error("render bug"); };
            return response;
        },
        render_pool.get_executor());
    Client client = connect();
    EXPECT_EQ(client.request("GET /broken HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 500u);
    EXPECT_EQ(client.request("GET /fine HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200u);
}

TEST_F(HttpServerTest, OversizedHeaderIsRefusedWith431) {
    start();
    Client client = connect();
    const std::string request =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(std::size_t{10} * 1024, 'a') +
        "\r\n\r\n";
    const auto response = client.request(request);
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.result_int(), 431u);
    EXPECT_TRUE(client.closed_by_server());
    // The server carries on.
    EXPECT_EQ(connect().request("GET /after HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /after");
}

TEST_F(HttpServerTest, OversizedBodyIsRefusedWith413) {
    start();
    Client declared = connect();
    const auto response =
        declared.request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    ASSERT_FALSE(declared.last_error()) << declared.last_error().message();
    EXPECT_EQ(response.result_int(), 413u);

    Client chunked = connect();
    const std::string chunk(std::size_t{40} * 1024, 'b');
    const std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                std::string("a000\r\n") + chunk + "\r\na000\r\n" + chunk + "\r\n";
    EXPECT_EQ(chunked.request(request).result_int(), 413u);
}

TEST_F(HttpServerTest, GarbageIsAnsweredWith400AndClosed) {
    start();
    Client client = connect();
    const auto response = client.request(std::string("\x01\x02\xff garbage \r\n\r\n", 15));
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.result_int(), 400u);
    EXPECT_TRUE(client.closed_by_server());

    Client wrong_version = connect();
    EXPECT_EQ(wrong_version.request("GET / HTTP/2.0\r\n\r\n").result_int(), 400u);
}

TEST_F(HttpServerTest, SlowClientIsCutAfterTheTimeout) {
    Limits limits;
    limits.timeout = 200ms;
    start(limits);
    Client client = connect();
    EXPECT_FALSE(client.send("GET / HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
    const auto start_time = std::chrono::steady_clock::now();
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_LT(std::chrono::steady_clock::now() - start_time, 2s);
}

TEST_F(HttpServerTest, AtTheCapTheLongestWaitingConnectionMakesRoom) {
    // Two slowloris clients hold the only two places with requests they never finish: a scrape
    // must still get in, and the client that has waited longest is the one let go.
    Limits limits;
    limits.max_connections = 2;
    start(limits);
    Client oldest = connect();
    EXPECT_FALSE(oldest.send("GET /slow HTTP/1.1\r\nHost: x\r\n"));
    std::this_thread::sleep_for(20ms);
    Client newer = connect();
    EXPECT_FALSE(newer.send("GET /slow HTTP/1.1\r\nHost: x\r\n"));
    std::this_thread::sleep_for(20ms);

    Client scrape = connect();
    EXPECT_EQ(scrape.request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200u);
    EXPECT_TRUE(oldest.closed_by_server());
    // The newer one kept its place and can still finish its request.
    EXPECT_EQ(newer.request("X-Late: 1\r\n\r\n").result_int(), 200u);
}

TEST_F(HttpServerTest, ListensOnIpv6Loopback) {
    {
        asio::io_context probe_context;
        tcp::acceptor probe(probe_context);
        beast::error_code ec;
        probe.open(tcp::v6(), ec);
        if (!ec) {
            probe.bind(tcp::endpoint(asio::ip::address_v6::loopback(), 0), ec);
        }
        if (ec) {
            GTEST_SKIP() << "no ::1 on this machine: " << ec.message();
        }
    }
    start({}, "[::1]:0");
    EXPECT_TRUE(endpoint_.address().is_v6());
    Client client = connect();
    EXPECT_EQ(client.request("GET /v6 HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /v6");
}

TEST_F(HttpServerTest, ColonPortListensOnAllInterfaces) {
    start({}, ":0");
    EXPECT_TRUE(endpoint_.address().is_unspecified());
    endpoint_.address(asio::ip::make_address("127.0.0.1"));  // reachable over IPv4 too
    Client client = connect();
    EXPECT_EQ(client.request("GET /any HTTP/1.1\r\nHost: x\r\n\r\n").body(), "GET /any");
}

TEST_F(HttpServerTest, HostNamesAreResolved) {
    Server server(context_.get_executor(), echo);
    ASSERT_TRUE(server.listen({"localhost:0"}).empty());
    ASSERT_FALSE(server.local_endpoints().empty());
    for (const auto& endpoint : server.local_endpoints()) {
        EXPECT_TRUE(endpoint.address().is_loopback()) << endpoint;
    }
}

TEST_F(HttpServerTest, BadAddressesGiveOneErrorEach) {
    Server server(context_.get_executor(), echo);
    const std::vector<std::string> bad = {"nonsense", "1.2.3.4:99999", "[::1",      "::1:9100",
                                          "host:",    ":abc",          "[nope]:80", "192.0.2.1:0"};
    std::vector<std::string> addresses = bad;
    addresses.push_back("127.0.0.1:0");
    const auto errors = server.listen(addresses);
    ASSERT_EQ(errors.size(), bad.size());
    for (std::size_t i = 0; i < bad.size(); ++i) {
        EXPECT_TRUE(errors[i].starts_with(bad[i] + ": ")) << errors[i];
    }
    EXPECT_EQ(server.local_endpoints().size(), 1u);

    const auto taken = server.local_endpoints().front();
    const auto busy = server.listen({"127.0.0.1:" + std::to_string(taken.port())});
    ASSERT_EQ(busy.size(), 1u);
    EXPECT_NE(busy[0].find("in use"), std::string::npos) << busy[0];

    server.stop();
    EXPECT_EQ(server.listen({"127.0.0.1:0"}).size(), 1u);
    EXPECT_LT(run_to_completion(), 1s);
}

TEST_F(HttpServerTest, StopClosesIdleKeepAliveConnectionsWithoutWaitingForGrace) {
    start();
    Client client = connect();
    EXPECT_EQ(client.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200u);
    server_->stop(10s);
    EXPECT_LT(run_to_completion(), 1s);
    EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, StopLetsARequestInProgressFinish) {
    start();
    Client client = connect();
    EXPECT_FALSE(client.send("GET /late HTTP/1.1\r\nHost: x\r\n"));
    context_.run_for(100ms);  // lets the server read the partial request
    server_->stop(10s);
    const auto response = client.request("\r\n");
    ASSERT_FALSE(client.last_error()) << client.last_error().message();
    EXPECT_EQ(response.body(), "GET /late");
    EXPECT_FALSE(response.keep_alive());
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_LT(run_to_completion(), 1s);
}

TEST_F(HttpServerTest, StopCutsWhatIsStillOpenAfterTheGrace) {
    start();
    Client client = connect();
    EXPECT_FALSE(client.send("GET /never HTTP/1.1\r\n"));
    context_.run_for(100ms);
    server_->stop(200ms);
    const auto took = run_to_completion();
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 2s);
    EXPECT_TRUE(client.closed_by_server());
}

TEST_F(HttpServerTest, DestroyingTheServerClosesEverything) {
    start();
    Client client = connect();
    EXPECT_EQ(client.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200u);
    EXPECT_FALSE(client.send("GET /half HTTP/1.1\r\n"));
    server_.reset();
    EXPECT_LT(run_to_completion(), 1s);
    EXPECT_TRUE(client.closed_by_server());
}

// bcrypt of "s3cret" at cost 4, as htpasswd -B would make it.
constexpr char kSecretHash[] = "$2b$04$VfRw7Y/idv.6pdrH4tgDW.G0aYb1UxSYj0MjirRs6leLXbTbNQu7O";

std::string get_with_authorization(std::string_view path, std::string_view authorization) {
    std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n";
    if (!authorization.empty()) request += "Authorization: " + std::string(authorization) + "\r\n";
    return request + "\r\n";
}

TEST_F(HttpServerTest, WithUsersNoRequestReachesTheHandlerWithoutTheRightPassword) {
    asio::thread_pool render(1);
    start({}, "127.0.0.1:0", echo, render.get_executor());
    server_->protect(
        {nullptr, std::make_shared<BasicAuth>(
                      std::map<std::string, std::string, std::less<>>{{"alice", kSecretHash}})});
    Client client = connect();
    for (const std::string& authorization :
         {std::string(), "Basic " + sasl::base64_encode("alice:wrong"),
          "Basic " + sasl::base64_encode("bob:s3cret"), std::string("Bearer s3cret")}) {
        const auto response = client.request(get_with_authorization("/metrics", authorization));
        EXPECT_EQ(response.result_int(), 401) << authorization;
        EXPECT_EQ(response[bhttp::field::www_authenticate],
                  "Basic realm=\"mailcanary\", charset=\"UTF-8\"");
        EXPECT_EQ(response.body(), "Unauthorized\n");
        EXPECT_TRUE(response.keep_alive()) << "a 401 does not end the connection";
    }
    const auto allowed = client.request(
        get_with_authorization("/metrics", "Basic " + sasl::base64_encode("alice:s3cret")));
    EXPECT_EQ(allowed.result_int(), 200);
    EXPECT_EQ(allowed.body(), "GET /metrics");
}

TEST_F(HttpServerTest, PlainHttpToATlsPortIsCutWithoutAnAnswer) {
    test::TempDir dir;
    const auto pair = test::TestPki().issue({});
    TlsServerConfig config;
    config.cert_file = dir.write("server.crt", pair.cert_pem).string();
    config.key_file = dir.write("server.key", pair.key_pem).string();
    TlsSetupError error;
    const auto tls = TlsServerContext::load(config, error);
    ASSERT_NE(tls, nullptr) << error.message;
    start();
    server_->protect({tls, nullptr});
    Client client = connect();
    const auto response = client.request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    // Closed without a byte: no HTTP answer, not even a TLS alert.
    EXPECT_EQ(client.last_error(), bhttp::error::end_of_stream)
        << client.last_error().message() << "; status " << response.result_int();
}

}  // namespace
}  // namespace mailcanary::http
