#include "protocols/oauth_token.hpp"
#include "common/curl_library.hpp"

#include <utility>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/fake_token_endpoint.hpp"
#include "support/files.hpp"
#include "support/test_pki.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class OAuthTokenTest : public testing::Test {
  protected:
    OAuthTokenTest() {
        dir_ = fs::temp_directory_path() / ("mailcanary-oauth-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        ca_file_ = pki_.write_ca_file(dir_);
        std::ofstream(dir_ / "refresh") << "refresh-1\n";
        std::ofstream(dir_ / "client-secret") << "s3cr3t&=\n";
    }

    OAuthSettings settings(const FakeTokenEndpoint& endpoint) const {
        return {.token_url = endpoint.url(),
                .client_id = "mailcanary-client",
                .client_secret_file = (dir_ / "client-secret").string(),
                .refresh_token_file = (dir_ / "refresh").string(),
                .scope = "https://mail.google.com/",
                .ca_file = ca_file_};
    }

    // Runs one token() call to completion, with its own event loop.
    static std::optional<std::string> fetch(OAuthTokenSource& source, std::string& error,
                                            std::chrono::milliseconds budget = 5s) {
        asio::io_context io;
        std::optional<std::string> token;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                token = co_await source.token(std::chrono::steady_clock::now() + budget, error);
            },
            asio::detached);
        io.run();  // returns once the answer is delivered: these calls finish before their deadline
        return token;
    }

    KeyPair endpoint_key() const { return pki_.issue({}); }

    TestPki pki_;
    fs::path dir_;
    std::string ca_file_;
};

TEST(CurlLibrary, IsLoadedOnceAndWorks) {
    std::string error;
    const CurlLibrary* curl = curl_library(error);
    ASSERT_NE(curl, nullptr) << error;
    EXPECT_EQ(curl_library(error), curl);
    CURL* handle = curl->easy_init();
    ASSERT_NE(handle, nullptr);
    char* escaped = curl->easy_escape(handle, "a b&c", 5);
    EXPECT_STREQ(escaped, "a%20b%26c");
    curl->free_memory(escaped);
    curl->easy_cleanup(handle);
}

TEST(CurlLibrary, AMissingLibraryIsAnErrorSayingWhatToInstall) {
    std::string error;
    EXPECT_FALSE(load_curl_library("libmailcanary-no-such-curl.so.4", error));
    EXPECT_NE(error.find("libmailcanary-no-such-curl.so.4"), std::string::npos) << error;
    EXPECT_NE(error.find("apt install libcurl4"), std::string::npos) << error;
}

TEST(CurlLibrary, ALibraryWithoutCurlsFunctionsIsRefused) {
    std::string error;
    EXPECT_FALSE(load_curl_library("libz.so.1", error));  // loads, but is not libcurl
    EXPECT_EQ(error, "libcurl has no curl_global_init");
}

TEST(TokenResponse, ParsesTheRfc6749Answer) {
    std::string error;
    const auto response = parse_token_response(
        200, R"({"access_token":"ya29.a0","token_type":"Bearer","expires_in":3599,"scope":"x"})",
        error);
    ASSERT_TRUE(response) << error;
    EXPECT_EQ(response->access_token, "ya29.a0");
    EXPECT_EQ(response->expires_in, 3599s);
    EXPECT_EQ(response->refresh_token, "");
}

TEST(TokenResponse, ErrorsNameTheServersReasonButNoToken) {
    std::string error;
    EXPECT_FALSE(parse_token_response(
        400,
        R"({"error":"invalid_grant","error_description":"Token has been expired or revoked."})",
        error));
    EXPECT_EQ(error,
              "token endpoint answered 400: invalid_grant (Token has been expired or revoked.)");
    EXPECT_FALSE(parse_token_response(200, R"({"token_type":"Bearer"})", error));
    EXPECT_NE(error.find("no access_token"), std::string::npos);
    EXPECT_FALSE(parse_token_response(502, "<html>Bad Gateway</html>", error));
    EXPECT_NE(error.find("502"), std::string::npos);
    EXPECT_NE(error.find("not JSON"), std::string::npos);
    // Some endpoints answer form-encoded: the body that is not JSON may be the tokens.
    EXPECT_FALSE(parse_token_response(200, "access_token=ya29.a0&refresh_token=1//0g", error));
    EXPECT_EQ(error, "token endpoint answered 200 with a body that is not JSON");
}

TEST_F(OAuthTokenTest, FetchesOnceAndReusesTheTokenUntilItNearlyExpires) {
    FakeTokenEndpoint endpoint(endpoint_key(),
                               {{200, R"({"access_token":"at-1","expires_in":3600})"}});
    OAuthTokenSource source(settings(endpoint));
    std::string error;
    EXPECT_EQ(fetch(source, error), "at-1") << error;
    EXPECT_EQ(fetch(source, error), "at-1") << error;
    ASSERT_EQ(endpoint.requests().size(), 1u);
    const std::string request = endpoint.requests().front();
    EXPECT_NE(request.find("grant_type=refresh_token"), std::string::npos) << request;
    EXPECT_NE(request.find("refresh_token=refresh-1"), std::string::npos) << request;
    EXPECT_NE(request.find("client_id=mailcanary-client"), std::string::npos) << request;
    EXPECT_NE(request.find("client_secret=s3cr3t%26%3D"), std::string::npos)
        << "form-encoded: " << request;
    EXPECT_NE(request.find("scope=https%3A%2F%2Fmail.google.com%2F"), std::string::npos) << request;
}

TEST_F(OAuthTokenTest, ATokenCloseToExpiryIsRefreshed) {
    FakeTokenEndpoint endpoint(endpoint_key(),
                               {{200, R"({"access_token":"at-1","expires_in":30})"},
                                {200, R"({"access_token":"at-2","expires_in":3600})"}});
    OAuthTokenSource source(settings(endpoint));
    std::string error;
    EXPECT_EQ(fetch(source, error), "at-1") << error;
    EXPECT_EQ(fetch(source, error), "at-2") << "30 s left is inside the 60 s margin";
    EXPECT_EQ(endpoint.requests().size(), 2u);
}

TEST_F(OAuthTokenTest, ARotatedRefreshTokenIsWrittenBack) {
    FakeTokenEndpoint endpoint(
        endpoint_key(),
        {{200, R"({"access_token":"at-1","expires_in":1,"refresh_token":"refresh-2"})"}});
    OAuthTokenSource source(settings(endpoint));
    std::string error;
    EXPECT_EQ(fetch(source, error), "at-1") << error;
    EXPECT_EQ(read_file(dir_ / "refresh"), "refresh-2\n");
    EXPECT_EQ(fs::status(dir_ / "refresh").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    fetch(source, error);
    ASSERT_EQ(endpoint.requests().size(), 2u);
    EXPECT_NE(endpoint.requests()[1].find("refresh_token=refresh-2"), std::string::npos);
}

TEST_F(OAuthTokenTest, ARefusalIsAnErrorWithTheServersReason) {
    FakeTokenEndpoint endpoint(
        endpoint_key(), {{400, R"({"error":"invalid_grant","error_description":"revoked"})"}});
    OAuthTokenSource source(settings(endpoint));
    std::string error;
    EXPECT_FALSE(fetch(source, error));
    EXPECT_EQ(error, "token endpoint answered 400: invalid_grant (revoked)");
    EXPECT_EQ(error.find("refresh-1"), std::string::npos);
}

TEST_F(OAuthTokenTest, AnEndpointWithAnUntrustedCertificateIsRefused) {
    FakeTokenEndpoint endpoint(TestPki::self_signed({}), {{200, R"({"access_token":"at-1"})"}});
    auto untrusted = settings(endpoint);
    untrusted.ca_file = ca_file_;  // our CA did not sign the self-signed certificate
    OAuthTokenSource source(untrusted);
    std::string error;
    EXPECT_FALSE(fetch(source, error));
    EXPECT_NE(error.find("certificate"), std::string::npos) << error;
    EXPECT_TRUE(endpoint.requests().empty());
    // The request's form (refresh token, client secret) stays out of the transport's error.
    EXPECT_EQ(error.find("refresh-1"), std::string::npos) << error;
    EXPECT_EQ(error.find("s3cr3t"), std::string::npos) << error;
}

TEST_F(OAuthTokenTest, ASlowEndpointFailsByTheRunsDeadline) {
    FakeTokenEndpoint endpoint(endpoint_key(), {{200, R"({"access_token":"late"})", 1500ms}});
    OAuthTokenSource source(settings(endpoint));
    std::string error;
    const auto started = std::chrono::steady_clock::now();
    asio::io_context io;
    std::optional<std::string> token;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            token = co_await source.token(std::chrono::steady_clock::now() + 300ms, error);
        },
        asio::detached);
    io.run();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_FALSE(token);
    // Either the wait or libcurl's own timeout (set to the same deadline) may end it first.
    EXPECT_NE(error.find("timed out"), std::string::npos) << error;
    // The worker's own timeout ends its request soon after; keep the loop alive until its late
    // answer has landed (and been dropped).
    const auto keep_alive = asio::make_work_guard(io);
    io.restart();
    io.run_for(1500ms);
}

TEST_F(OAuthTokenTest, AMissingRefreshTokenFileIsAnError) {
    FakeTokenEndpoint endpoint(endpoint_key(), {{200, R"({"access_token":"at-1"})"}});
    auto missing = settings(endpoint);
    missing.refresh_token_file = (dir_ / "nope").string();
    OAuthTokenSource source(missing);
    std::string error;
    EXPECT_FALSE(fetch(source, error));
    EXPECT_NE(error.find("nope"), std::string::npos) << error;
}

}  // namespace
}  // namespace mailcanary::test
