// The status page quotes what servers said: a hostile server must not get markup or script into
// the page an operator opens in a browser.
#include "agent/status_page.hpp"
#include "agent/status_api.hpp"

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
    RunResult result;
    result.outcome = outcome;
    result.transcript = transcript;
    result.duration = 12ms;
    result.finished = std::chrono::system_clock::now();
    return result;
}

TEST(StatusPage, ServerWordsAndConfiguredNamesReachThePageOnlyAsText) {
    const std::string name = "mx\"><img src=x onerror=alert(1)>";
    ResultStore results;
    results.record({name, "connect"}, hostile_failure());
    http::Request request;
    request.method = "GET";
    request.path = "/api/v1/status";

    // The page draws itself from JSON: a quote cannot end the string it is in...
    const http::Response status = serve_status_api({one_target(name), results, {}}, request);
    EXPECT_EQ(status.content_type, "application/json");
    EXPECT_NE(status.body.find(R"("mx\"><img src=x onerror=alert(1)>")"), std::string::npos)
        << status.body;
    EXPECT_NE(status.body.find(std::string("\"554 ") + kScript + "\""), std::string::npos)
        << status.body;
    // ...and the page's script puts what it got into the document only as text, never as markup.
    const std::string_view page = status_page_html();
    for (const std::string_view markup_sink :
         {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("}) {
        EXPECT_EQ(page.find(markup_sink), std::string_view::npos) << markup_sink;
    }
    EXPECT_NE(page.find("textContent"), std::string_view::npos);
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
