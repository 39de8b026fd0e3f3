// The status page's data: the bounded run history, the JSON writer, and /api/v1/status and
// /api/v1/results as a script reads them.
#include <gtest/gtest.h>

#include <string>

#include "agent/run_history.hpp"
#include "agent/status_api.hpp"
#include "agent/status_page.hpp"
#include "common/json_writer.hpp"

namespace mailcanary {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

const system_clock::time_point kStart = system_clock::time_point(1'800'000'000s);

RunHistory::Run history_run(int second, bool failed) {
    return {kStart + std::chrono::seconds(second), 1ms,
            failed ? std::optional(FailureReason::connect_refused) : std::nullopt};
}

TEST(RunHistory, KeepsTheRecentRunsAndOlderFailuresWithinItsBounds) {
    RunHistory history;
    // Every fourth run fails: the 10,000 runs must not grow it past its two bounds.
    for (int i = 0; i < 10'000; ++i) history.add(history_run(i, i % 4 == 0));
    const auto runs = history.runs();
    ASSERT_EQ(runs.size(), RunHistory::kRecentRuns + RunHistory::kOlderFailures);
    // The older part holds only failures, the newest ones that fell out of the recent runs.
    for (std::size_t i = 0; i < RunHistory::kOlderFailures; ++i) {
        EXPECT_TRUE(runs[i].failure) << i;
    }
    EXPECT_EQ(runs.back().finished, kStart + 9'999s);
    EXPECT_EQ(runs[RunHistory::kOlderFailures].finished,
              kStart + std::chrono::seconds(10'000 - RunHistory::kRecentRuns));
    EXPECT_EQ(runs[RunHistory::kOlderFailures - 1].finished,
              kStart + std::chrono::seconds(9'940 - 4));  // the last failure before them
    for (std::size_t i = 1; i < runs.size(); ++i) {
        EXPECT_LT(runs[i - 1].finished, runs[i].finished) << "oldest first, at " << i;
    }
}

TEST(RunHistory, AFailureOutlivesTheSuccessesAfterIt) {
    RunHistory history;
    history.add(history_run(0, true));
    for (int i = 1; i <= 500; ++i) history.add(history_run(i, false));
    const auto runs = history.runs();
    ASSERT_EQ(runs.size(), RunHistory::kRecentRuns + 1);
    EXPECT_EQ(runs.front().finished, kStart);
    EXPECT_TRUE(runs.front().failure);
    // Successes alone are kept only as the recent runs.
    EXPECT_EQ(runs[1].finished, kStart + std::chrono::seconds(500 - RunHistory::kRecentRuns + 1));
}

TEST(JsonWriter, PlacesCommasAndEscapes) {
    JsonWriter json;
    json.begin_object()
        .key("a")
        .value("q\"b\\\n\x01")
        .key("list")
        .begin_array()
        .value(true)
        .value(std::int64_t{-3})
        .value(0.25)
        .null()
        .begin_object()
        .end_object()
        .end_array()
        .key("nan")
        .value(std::nan(""))
        .end_object();
    EXPECT_EQ(json.text(), R"({"a":"q\"b\\\n\u0001","list":[true,-3,0.25,null,{}],"nan":null})");
}

class StatusApi : public testing::Test {
  protected:
    StatusApi() {
        config_.source_path = "/etc/mailcanary/mailcanary.toml";
        TargetConfig mx;
        mx.name = "mx <1>";
        mx.host = "127.0.0.1";
        mx.port = 2525;
        mx.interval = 30s;
        mx.probes = {"connect", "accept"};
        config_.targets.push_back(mx);
    }

    static RunResult run(system_clock::time_point finished, std::optional<FailureReason> failure) {
        RunResult result;
        if (failure) result.outcome = Outcome::failed(*failure, "535 5.7.8 no");
        result.finished = finished;
        result.duration = 12ms;
        result.phase_durations[static_cast<std::size_t>(Phase::connect)] = 2ms;
        result.phase_durations[static_cast<std::size_t>(Phase::auth)] = 9ms;
        result.transcript.server("220 mx ready");
        result.transcript.client("AUTH PLAIN <redacted>");
        result.transcript.server(failure ? "535 5.7.8 no" : "235 ok");
        result.transcript.client("QUIT");
        result.transcript.server("221 bye");
        return result;
    }

    http::Response get(const std::string& path, std::map<std::string, std::string> query = {}) {
        http::Request request;
        request.method = "GET";
        request.path = path;
        request.query = std::move(query);
        return serve_status_api({config_, results_, {1, 0, 8}, kStart + 100s}, request);
    }

    Config config_;
    ResultStore results_;
};

TEST_F(StatusApi, StatusHasEveryProbeWithItsStateSinceWhenAndLastRun) {
    const ResultStore::Key key{"mx <1>", "connect"};
    results_.record(key, run(kStart, std::nullopt));
    results_.record(key, run(kStart + 30s, FailureReason::auth_rejected));
    results_.record(key, run(kStart + 60s, FailureReason::auth_rejected));
    const auto response = get("/api/v1/status");
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.content_type, "application/json");
    const std::string& body = response.body;
    EXPECT_NE(body.find(R"("runs":{"in_flight":1,"queued":0,"limit":8})"), std::string::npos)
        << body;
    // Failing since the first of the two failures, not the latest.
    EXPECT_NE(
        body.find(
            R"("target":"mx <1>","probe":"connect","labels":{},"host":"127.0.0.1","port":2525,)"
            R"("interval_seconds":30,"backoff_seconds":0,"state":"failing",)"
            R"("reason":"auth_rejected","detail":"535 5.7.8 no",)"
            R"("since":"2027-01-15T08:00:30.000Z")"),
        std::string::npos)
        << body;
    // The reply that ended it, not the goodbye's; the phases in protocol order.
    EXPECT_NE(body.find(R"("last_reply":"535 5.7.8 no")"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("phases":[{"phase":"connect","duration_seconds":0.002},)"
                        R"({"phase":"auth","duration_seconds":0.009}])"),
              std::string::npos)
        << body;
    EXPECT_NE(body.find(R"("history":[{"finished":"2027-01-15T08:00:00.000Z",)"
                        R"("duration_seconds":0.012,"reason":null},)"),
              std::string::npos)
        << body;
    // A probe that has not run yet is pending, with nothing to show.
    EXPECT_NE(body.find(R"("probe":"accept","labels":{},"host":"127.0.0.1","port":2525,)"
                        R"("interval_seconds":30,)"
                        R"("backoff_seconds":0,"state":"pending","reason":null,"detail":"",)"
                        R"("since":null,"last_run":null,"last_failure":null,"history":[]})"),
              std::string::npos)
        << body;
    EXPECT_EQ(body.find("transcript"), std::string::npos) << "transcripts are one click away";
}

TEST_F(StatusApi, ResultsGiveTheTranscriptsOfOneProbeOrAll) {
    results_.record({"mx <1>", "connect"}, run(kStart, FailureReason::auth_rejected));
    results_.record({"mx <1>", "connect"}, run(kStart + 30s, std::nullopt));
    const auto one = get("/api/v1/results", {{"target", "mx <1>"}, {"probe", "connect"}});
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_NE(one.body.find(R"({"at_seconds":)"), std::string::npos) << one.body;
    EXPECT_NE(one.body.find(R"("direction":"client","text":"AUTH PLAIN <redacted>"})"),
              std::string::npos)
        << one.body;
    // The last run succeeded; the failure before it is there too.
    EXPECT_NE(one.body.find(R"("last_failure":{"finished":"2027-01-15T08:00:00.000Z")"),
              std::string::npos)
        << one.body;
    EXPECT_EQ(one.body.find(R"("probe":"accept")"), std::string::npos) << one.body;
    const auto all = get("/api/v1/results", {{"target", "mx <1>"}});
    ASSERT_EQ(all.status, 200);
    EXPECT_NE(all.body.find(R"({"probe":"accept","labels":{},"state":"pending","last_run":null)"),
              std::string::npos)
        << all.body;
}

TEST_F(StatusApi, BadParametersAre400AndUnknownNames404WithTheReason) {
    const auto status_of = [&](const std::string& path, std::map<std::string, std::string> query) {
        const auto response = get(path, std::move(query));
        return std::to_string(response.status) + " " + response.body;
    };
    EXPECT_EQ(status_of("/api/v1/results", {}),
              R"(400 {"error":"parameter \"target\" is required"})");
    EXPECT_EQ(status_of("/api/v1/results", {{"target", "mx <1>"}, {"colour", "red"}}),
              R"(400 {"error":"unknown parameter \"colour\": expected target, probe or a label of )"
              R"x(the target's instances (ip_family)"})x");
    EXPECT_EQ(status_of("/api/v1/results", {{"target", ""}}),
              R"(400 {"error":"parameter \"target\" is empty"})");
    EXPECT_EQ(status_of("/api/v1/results", {{"target", "mx"}}),
              R"(404 {"error":"no target \"mx\""})");
    EXPECT_EQ(status_of("/api/v1/results", {{"target", "mx <1>"}, {"probe", "imap"}}),
              R"(404 {"error":"target \"mx <1>\" has no probe \"imap\""})");
    EXPECT_EQ(status_of("/api/v1/status", {{"x", "1"}}),
              R"(400 {"error":"unknown parameter \"x\": /api/v1/status takes none"})");
}

// An `ip = "both"` target is two instances: the status lists both with their labels, the
// results give both, and a label parameter picks one.
TEST_F(StatusApi, ATargetOfTwoInstancesShowsBothAndALabelPicksOne) {
    TargetConfig dual = config_.targets.front();
    dual.name = "dual";
    dual.probes = {"connect"};
    dual.ip = IpChoice::both;
    config_.targets = expand_instances({dual});
    ASSERT_EQ(config_.targets.size(), 2u);
    results_.record({R"(dual{ip_family="v4"})", "connect"}, run(kStart, std::nullopt));
    results_.record({R"(dual{ip_family="v6"})", "connect"},
                    run(kStart, FailureReason::connect_refused));
    const auto status = get("/api/v1/status");
    EXPECT_NE(status.body.find(R"("target":"dual","probe":"connect","labels":{"ip_family":"v4"},)"
                               R"("host":"127.0.0.1","port":2525,"interval_seconds":30,)"
                               R"("backoff_seconds":0,"state":"ok")"),
              std::string::npos)
        << status.body;
    EXPECT_NE(status.body.find(R"("target":"dual","probe":"connect","labels":{"ip_family":"v6"},)"
                               R"("host":"127.0.0.1","port":2525,"interval_seconds":30,)"
                               R"("backoff_seconds":0,"state":"failing")"),
              std::string::npos)
        << status.body;
    const auto both = get("/api/v1/results", {{"target", "dual"}});
    ASSERT_EQ(both.status, 200) << both.body;
    EXPECT_NE(both.body.find(R"({"probe":"connect","labels":{"ip_family":"v4"},"state":"ok")"),
              std::string::npos)
        << both.body;
    EXPECT_NE(both.body.find(R"({"probe":"connect","labels":{"ip_family":"v6"},"state":"failing")"),
              std::string::npos)
        << both.body;
    const auto v6 = get("/api/v1/results", {{"target", "dual"}, {"ip_family", "v6"}});
    ASSERT_EQ(v6.status, 200) << v6.body;
    EXPECT_EQ(v6.body.find(R"("ip_family":"v4")"), std::string::npos) << v6.body;
    EXPECT_NE(v6.body.find(R"("labels":{"ip_family":"v6"},"state":"failing")"), std::string::npos)
        << v6.body;
    const auto none = get("/api/v1/results", {{"target", "dual"}, {"ip_family", "v5"}});
    EXPECT_EQ(none.status, 404) << none.body;
    // A label the target's instances do not have is a mistake, as any unknown parameter.
    EXPECT_EQ(get("/api/v1/results", {{"target", "mx <1>"}, {"ip_family", "v4"}}).status, 400);
    // The plain-text page: both instances, or the one a label picks.
    http::Request page;
    page.method = "GET";
    page.path = "/results";
    page.query = {{"target", "dual"}, {"probe", "connect"}};
    const auto text = render_results(results_, page);
    ASSERT_EQ(text.status, 200) << text.body;
    EXPECT_NE(text.body.find(R"(target dual{ip_family="v4"}, probe connect)"), std::string::npos)
        << text.body;
    EXPECT_NE(text.body.find(R"(target dual{ip_family="v6"}, probe connect)"), std::string::npos)
        << text.body;
    page.query.emplace("ip_family", "v6");
    const auto one = render_results(results_, page);
    EXPECT_EQ(one.body.find(R"(ip_family="v4")"), std::string::npos) << one.body;
    EXPECT_NE(one.body.find("connect_refused"), std::string::npos) << one.body;
}

TEST(StatusPage, IsOnePageWithNothingFromElsewhere) {
    const auto response = serve_status_page();
    EXPECT_EQ(response.content_type, "text/html; charset=utf-8");
    EXPECT_NE(response.body.find("/api/v1/status"), std::string::npos);
    // Offline: no URL of another origin in the page (SVG's namespace is a name, never fetched),
    // and the policy forbids asking one.
    std::string page = response.body;
    const std::string svg_namespace = "\"http://www.w3.org/2000/svg\"";
    page.erase(page.find(svg_namespace), svg_namespace.size());
    EXPECT_EQ(page.find("http://"), std::string::npos);
    EXPECT_EQ(page.find("https://"), std::string::npos);
    EXPECT_EQ(page.find("src="), std::string::npos);
    ASSERT_EQ(response.headers.size(), 1u);
    EXPECT_EQ(response.headers[0].first, "Content-Security-Policy");
    EXPECT_NE(response.headers[0].second.find("default-src 'none'"), std::string::npos);
    EXPECT_NE(response.headers[0].second.find("connect-src 'self'"), std::string::npos);
}

}  // namespace
}  // namespace mailcanary
