// The agent's inputs from outside: the configuration file's text, and HTTP requests as the
// server's parser and the agent's handler see them (without sockets).
#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>

#include <sstream>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "agent/http_message.hpp"
#include "common/log.hpp"
#include "fuzz/entries.hpp"
#include "fuzz/properties.hpp"

namespace mailcanary::fuzz {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kConfigName = "fuzz.toml";

// An agent without targets whose handler answers the requests; never destroyed, like the agent
// of a running process. Reloads read a file that is not there, and fail.
Agent& agent() {
    struct Harness {
        Harness() {
            log::configure(log::Level::error, log::Format::logfmt);
            auto loaded = load_config_string("", std::string(kConfigName));
            require(loaded.config.has_value(), "an empty configuration loads");
            CliOptions options;
            options.config_file = "/nonexistent/mailcanary-fuzz.toml";
            agent.emplace(io, std::move(options), std::move(*loaded.config), CompiledLoad{});
        }
        boost::asio::io_context io;
        std::optional<Agent> agent;
    };
    static Harness* const harness = new Harness();
    return *harness->agent;
}

// What the server writes back for one response: it must serialize.
void require_sendable(http::ResponseMessage& response) {
    require(response.result_int() >= 100 && response.result_int() <= 599, "a valid status");
    std::ostringstream wire;
    wire << response;
    require(wire.str().starts_with("HTTP/1."), "the response serializes");
}

}  // namespace

void config(std::string_view input) {
    const auto loaded = load_config_string(input, std::string(kConfigName));
    require(loaded.config.has_value() == loaded.errors.empty(),
            "a configuration loads, or says why not");
    for (const ConfigError& error : loaded.errors) {
        require(!error.message.empty(), "an error says what is wrong");
        require(error.file == kConfigName, "an error names the file");
    }
}

// Requests one after another on one connection, as the server reads them: each answered, until
// one is refused, incomplete or asks to close.
void http_request(std::string_view input) {
    const http::Limits limits;
    const http::Handler handler = [](const http::Request& request) {
        return agent().handle(request);
    };
    std::string_view rest = input;
    for (int request_number = 0; request_number < 8 && !rest.empty(); ++request_number) {
        http::RequestParser parser;
        http::apply_limits(parser, limits);
        parser.eager(true);
        boost::beast::error_code ec;
        while (!ec && !parser.is_done() && !rest.empty()) {
            const auto used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
            rest.remove_prefix(used);
            if (ec == bhttp::error::need_more && used == 0) break;
            if (ec == bhttp::error::need_more) ec = {};
        }
        if (ec == bhttp::error::need_more || (!ec && !parser.is_done())) {
            return;  // the server would wait for the rest, until its deadline
        }
        if (ec) {
            if (const auto status = http::status_for_read_error(ec)) {
                auto response = http::error_response(*status, 11, false);
                require_sendable(response);
            }
            return;
        }
        http::RequestMessage request = parser.release();
        std::optional<http::Response> reply = http::call_handler(handler, request);
        require(reply.has_value(), "the agent's handler does not throw");
        if (reply->render_body) reply->body = std::exchange(reply->render_body, nullptr)();
        const bool keep_alive = request.keep_alive();
        auto response = http::to_message(std::move(*reply), request, keep_alive);
        require_sendable(response);
        if (request.method() == bhttp::verb::head) {
            require(response.body().empty(), "HEAD gets no body");
        }
        if (!response.keep_alive()) return;
    }
}

}  // namespace mailcanary::fuzz
