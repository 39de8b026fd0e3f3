// The status page quotes what servers said: a hostile server must not get markup or script into
// the page an operator opens in a browser.
#include "agent/status_page.hpp"

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

using namespace std::chrono_literals;

constexpr const char* kScript = "<script>alert(1)</script>";

Config one_target(const std::string& name) {
    Config config;
    config.source_path = "/etc/mailcanary/<b>.toml";
    TargetConfig target;
    target.name = name;
    target.host = "mx.example.net";
    target.interval = 30s;
    target.probes = {"connect"};
    config.targets.push_back(target);
    return config;
}

RunResult hostile_failure() {
    Transcript transcript;
    transcript.server(std::string("554 ") + kScript);
    Outcome outcome = Outcome::failed(FailureReason::protocol, std::string("554 ") + kScript);
    outcome.queue_id = kScript;
    return {outcome, transcript, 12ms, std::chrono::system_clock::now()};
}

TEST(StatusPage, ServerWordsAndConfiguredNamesAreEscaped) {
    const std::string name = "mx\"><img src=x onerror=alert(1)>";
    ResultStore results;
    results.record({name, "connect"}, hostile_failure());

    const std::string page = render_status_page(one_target(name), results, {});
    EXPECT_EQ(page.find("<script"), std::string::npos) << page;
    EXPECT_EQ(page.find("<img"), std::string::npos) << page;
    EXPECT_EQ(page.find("<b>"), std::string::npos) << page;
    EXPECT_NE(page.find("554 &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << page;
    EXPECT_NE(page.find("mx&quot;&gt;&lt;img"), std::string::npos) << page;
    // The link to the transcripts carries the name URL-encoded, so it cannot end the attribute.
    EXPECT_NE(page.find("/results?target=mx%22%3E%3Cimg"), std::string::npos) << page;
}

TEST(StatusPage, TranscriptsAreServedAsPlainText) {
    ResultStore results;
    results.record({"mx", "connect"}, hostile_failure());
    http::Request request;
    request.path = "/results";
    request.query = {{"target", "mx"}, {"probe", "connect"}};

    const http::Response response = render_results(results, request);
    EXPECT_EQ(response.status, 200u);
    // The server's words stay as they came (a reader needs them), so the type is what keeps a
    // browser from reading them as markup.
    EXPECT_NE(response.body.find(kScript), std::string::npos) << response.body;
    EXPECT_EQ(response.content_type, "text/plain; charset=utf-8");
}

}  // namespace
}  // namespace mailcanary
