// The HTTP server's half without sockets: what a request becomes for the handler, how a failed
// read is answered, and what the handler's reply becomes on the wire. http_server.cpp adds the
// connections; the fuzzer (tests/fuzz) drives the same functions with bytes.
#pragma once

#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>

#include "agent/http_server.hpp"

namespace mailcanary::http {

using RequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using ResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// The server's bounds on one request's header and body.
void apply_limits(RequestParser& parser, const Limits& limits);

// The handler's view: HEAD as GET, the path without the query, the query decoded.
Request to_handler_request(RequestMessage& message);

// The status to answer a failed read with, or nullopt when there is nobody to answer (the peer
// left, the deadline passed, or stop() closed the connection).
std::optional<boost::beast::http::status> status_for_read_error(const boost::beast::error_code& ec);

bool expects_continue(const RequestMessage& request);

// A plain-text answer with the status's reason as its body.
ResponseMessage error_response(boost::beast::http::status status, unsigned version,
                               bool keep_alive);

// The handler's reply; nullopt when it threw (a handler bug must not take the agent down).
std::optional<Response> call_handler(const Handler& handler, RequestMessage& request);

// The reply as sent (its body already rendered): a 500 for a status outside 200..599 or headers
// Beast refuses; a HEAD request gets the headers only.
ResponseMessage to_message(Response reply, const RequestMessage& request, bool keep_alive);

}  // namespace mailcanary::http
