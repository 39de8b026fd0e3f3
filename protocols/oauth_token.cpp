#include "protocols/oauth_token.hpp"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/blocking_work.hpp"
#include "common/curl_library.hpp"
#include "common/log.hpp"
#include "protocols/credentials.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::string form_field(const CurlLibrary& curl, CURL* handle, std::string_view name,
                       const std::string& value) {
    char* escaped = curl.easy_escape(handle, value.c_str(), static_cast<int>(value.size()));
    std::string field = std::string(name) + "=" + (escaped != nullptr ? escaped : "");
    curl.free_memory(escaped);
    return field;
}

// Writes the rotated refresh token next to the old one, then renames it over: a crash never
// leaves a half-written file, and the old token stays until the new one is complete.
bool replace_file(const std::string& path, const std::string& content) {
    const std::string temporary = path + ".new";
    {
        std::ofstream out(temporary, std::ios::trunc | std::ios::binary);
        if (!out) return false;
        std::filesystem::permissions(
            temporary, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        out << content << '\n';
        if (!out.flush()) return false;
    }
    return std::rename(temporary.c_str(), path.c_str()) == 0;
}

}  // namespace

std::optional<TokenResponse> parse_token_response(long http_status, std::string_view body,
                                                  std::string& error) {
    boost::property_tree::ptree json;
    try {
        std::istringstream in{std::string(body)};
        boost::property_tree::read_json(in, json);
    } catch (const boost::property_tree::json_parser_error&) {
        error = "token endpoint answered " + std::to_string(http_status) +
                " with a body that is not JSON";
        return std::nullopt;
    }
    if (http_status != 200) {
        error = "token endpoint answered " + std::to_string(http_status);
        if (auto code = json.get_optional<std::string>("error")) error += ": " + *code;
        if (auto text = json.get_optional<std::string>("error_description"))
            error += " (" + *text + ")";
        return std::nullopt;
    }
    TokenResponse response;
    response.access_token = json.get<std::string>("access_token", "");
    if (response.access_token.empty()) {
        error = "token endpoint's answer has no access_token";
        return std::nullopt;
    }
    if (auto seconds = json.get_optional<long>("expires_in"); seconds && *seconds > 0) {
        response.expires_in = std::chrono::seconds(*seconds);
    }
    response.refresh_token = json.get<std::string>("refresh_token", "");
    return response;
}

std::optional<TokenResponse> request_token(const OAuthSettings& settings,
                                           const std::string& refresh_token,
                                           std::chrono::milliseconds timeout, std::string& error) {
    std::string client_secret;
    if (!settings.client_secret_file.empty()) {
        auto secret = read_secret_file(settings.client_secret_file, error);
        if (!secret) return std::nullopt;
        client_secret = std::move(*secret);
    }
    const CurlLibrary* library = curl_library(error);
    if (library == nullptr) return std::nullopt;
    const CurlLibrary& curl = *library;
    std::unique_ptr<CURL, void (*)(CURL*)> request(curl.easy_init(), curl.easy_cleanup);
    if (!request) {
        error = "libcurl could not start a request";
        return std::nullopt;
    }
    CURL* handle = request.get();
    std::string body = form_field(curl, handle, "grant_type", "refresh_token") + "&" +
                       form_field(curl, handle, "refresh_token", refresh_token) + "&" +
                       form_field(curl, handle, "client_id", settings.client_id);
    if (!client_secret.empty())
        body += "&" + form_field(curl, handle, "client_secret", client_secret);
    if (!settings.scope.empty()) body += "&" + form_field(curl, handle, "scope", settings.scope);

    std::string answer;
    curl.easy_setopt(handle, CURLOPT_URL, settings.token_url.c_str());
    curl.easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "https");
    curl.easy_setopt(handle, CURLOPT_POSTFIELDS, body.c_str());
    curl.easy_setopt(handle, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<long long>(timeout.count(), 1)));
    curl.easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
    curl.easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!settings.ca_file.empty())
        curl.easy_setopt(handle, CURLOPT_CAINFO, settings.ca_file.c_str());
    curl.easy_setopt(
        handle, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* out) {
            auto& text = *static_cast<std::string*>(out);
            // A token answer is small; a server sending megabytes is not a token endpoint.
            if (text.size() + size * count > size_t{1024} * 1024) return size_t{0};
            text.append(data, size * count);
            return size * count;
        });
    curl.easy_setopt(handle, CURLOPT_WRITEDATA, &answer);
    // Lets a stopping agent abort an exchange at once instead of waiting out its timeout.
    curl.easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
    curl.easy_setopt(
        handle, CURLOPT_XFERINFOFUNCTION,
        +[](void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
            return blocking_work_stopping() ? 1 : 0;
        });
    char curl_error[CURL_ERROR_SIZE] = "";
    curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, curl_error);

    if (const CURLcode code = curl.easy_perform(handle); code != CURLE_OK) {
        error = "token endpoint " + settings.token_url + ": " +
                (curl_error[0] != '\0' ? std::string(curl_error) : curl.easy_strerror(code));
        return std::nullopt;
    }
    long status = 0;
    curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    return parse_token_response(status, answer, error);
}

OAuthTokenSource::OAuthTokenSource(OAuthSettings settings) : settings_(std::move(settings)) {}

asio::awaitable<std::optional<std::string>> OAuthTokenSource::token(Clock::time_point deadline,
                                                                    std::string& error) {
    if (!access_token_.empty() && Clock::now() + kRefreshMargin < expires_at_)
        co_return access_token_;

    auto refresh_token = read_secret_file(settings_.refresh_token_file, error);
    if (!refresh_token) co_return std::nullopt;

    using Answer = std::pair<std::optional<TokenResponse>, std::string>;
    const auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    // A named function, not a temporary in the co_await expression: g++ 12 destroys such
    // temporaries twice.
    std::function<Answer()> exchange = [settings = settings_, refresh = *refresh_token, timeout] {
        std::string worker_error;
        auto response = request_token(settings, refresh, timeout, worker_error);
        return Answer{std::move(response), std::move(worker_error)};
    };
    auto answer = co_await run_blocking<Answer>(std::move(exchange), deadline);
    if (!answer) {
        error = "token endpoint " + settings_.token_url +
                ": timed out (no answer by the run's deadline)";
        co_return std::nullopt;
    }
    if (!answer->first) {
        error = answer->second;
        co_return std::nullopt;
    }
    const auto& response = *answer->first;
    access_token_ = response.access_token;
    expires_at_ = Clock::now() + response.expires_in;
    if (!response.refresh_token.empty() && response.refresh_token != *refresh_token &&
        !replace_file(settings_.refresh_token_file, response.refresh_token)) {
        // Providers that rotate refresh tokens invalidate the old one sooner or later: the
        // operator must hear of it now, while the access token still works.
        log::warn("could not write the rotated OAuth2 refresh token; the old one may stop working",
                  {{"file", settings_.refresh_token_file}});
    }
    co_return access_token_;
}

}  // namespace mailcanary
