#include "agent/http_message.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <string_view>

namespace mailcanary::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Decodes %XX and '+'; a '%' not followed by two hex digits is kept as is.
std::string decode_query_component(std::string_view text) {
    std::string decoded;
    decoded.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            decoded += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            decoded += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            decoded += text[i];
        }
    }
    return decoded;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> parameters;
    while (!query.empty()) {
        const auto ampersand = query.find('&');
        const std::string_view pair = query.substr(0, ampersand);
        query =
            ampersand == std::string_view::npos ? std::string_view() : query.substr(ampersand + 1);
        if (pair.empty()) {
            continue;
        }
        const auto equals = pair.find('=');
        const std::string_view value =
            equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
        parameters.emplace(decode_query_component(pair.substr(0, equals)),
                           decode_query_component(value));
    }
    return parameters;
}

}  // namespace

void apply_limits(RequestParser& parser, const Limits& limits) {
    parser.header_limit(limits.max_header_bytes);
    parser.body_limit(limits.max_body_bytes);
}

Request to_handler_request(RequestMessage& message) {
    Request request;
    request.method = message.method() == bhttp::verb::head ? std::string("GET")
                                                           : std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    const auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string_view::npos) {
        request.query = parse_query(target.substr(question + 1));
    }
    for (const auto& field : message) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        request.headers.emplace(std::move(name), std::string(field.value()));
    }
    request.body = std::move(message.body());
    return request;
}

ResponseMessage error_response(bhttp::status status, unsigned version, bool keep_alive) {
    ResponseMessage response(status, version);
    response.set(bhttp::field::server, "mailcanary");
    response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    response.body() = std::string(bhttp::obsolete_reason(status)) + "\n";
    response.keep_alive(keep_alive);
    response.prepare_payload();
    return response;
}

std::optional<Response> call_handler(const Handler& handler, RequestMessage& request) {
    try {
        return handler(to_handler_request(request));
    } catch (...) {
        return std::nullopt;
    }
}

ResponseMessage to_message(Response reply, const RequestMessage& request, bool keep_alive) {
    const unsigned version = request.version();
    if (reply.status < 200 || reply.status > 599) {
        return error_response(bhttp::status::internal_server_error, version, keep_alive);
    }
    try {
        ResponseMessage response;
        response.version(version);
        response.result(reply.status);
        response.set(bhttp::field::server, "mailcanary");
        if (!reply.content_type.empty()) {
            response.set(bhttp::field::content_type, reply.content_type);
        }
        for (const auto& [name, value] : reply.headers) {
            response.insert(name, value);
        }
        response.body() = std::move(reply.body);
        response.keep_alive(keep_alive);
        response.prepare_payload();  // throws on a body with 204 or 304
        if (request.method() == bhttp::verb::head) {
            response.body().clear();  // Content-Length still tells the GET body's size
        }
        return response;
    } catch (...) {
        return error_response(bhttp::status::internal_server_error, version, keep_alive);
    }
}

std::optional<bhttp::status> status_for_read_error(const beast::error_code& ec) {
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        return bhttp::status::request_header_fields_too_large;
    }
    if (ec == bhttp::error::body_limit) {
        return bhttp::status::payload_too_large;
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
        return std::nullopt;
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
        return bhttp::status::bad_request;
    }
    return std::nullopt;
}

bool expects_continue(const RequestMessage& request) {
    return beast::iequals(request[bhttp::field::expect], "100-continue");
}

}  // namespace mailcanary::http
