// docs/metrics.md against the contract: every phase, failure reason, probe kind and metric family
// the agent can export is documented there, and nothing is documented that it cannot export.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "agent/probe_endpoint.hpp"
#include "probes/probe_kind.hpp"
#include "probes/registry.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"

namespace mailcanary {
namespace {

std::string source_file(const std::string& path) {
    std::ifstream file(std::string(MAILCANARY_SOURCE_DIR) + "/" + path);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

std::string metrics_doc() { return source_file("docs/metrics.md"); }

// The section of the series /probe answers with, which /metrics does not serve.
constexpr std::string_view kProbeEndpointHeading = "## /probe";

// The names in the first column ("| `name` | ...") of the table that follows `heading`, up to
// the next heading.
std::set<std::string> first_column(const std::string& doc, const std::string& heading) {
    std::set<std::string> names;
    const auto start = doc.find("\n" + heading + "\n");
    if (start == std::string::npos) return names;
    std::istringstream lines(doc.substr(start + heading.size() + 2));
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("#")) break;
        if (!line.starts_with("| `")) continue;
        const auto end = line.find('`', 3);
        if (end != std::string::npos) names.insert(line.substr(3, end - 3));
    }
    return names;
}

template <typename Values>
std::set<std::string> names_of(const Values& values) {
    std::set<std::string> names;
    for (const auto value : values) names.insert(std::string(to_string(value)));
    return names;
}

TEST(ContractDocs, EveryPhaseIsDocumentedAndNoOther) {
    EXPECT_EQ(first_column(metrics_doc(), "### `phase` values"), names_of(kAllPhases));
}

TEST(ContractDocs, EveryFailureReasonIsDocumentedAndNoOther) {
    EXPECT_EQ(
        first_column(metrics_doc(), "### `reason` values of `mailcanary_probe_failures_total`"),
        names_of(kAllFailureReasons));
}

TEST(ContractDocs, EveryProbeKindIsDocumentedAndNoOther) {
    std::set<std::string> kinds;
    for (const ProbeKind* kind : all_probes()) kinds.insert(std::string(kind->name()));
    const auto documented = first_column(metrics_doc(), "## Per (target, probe)");
    std::set<std::string> probe_rows;
    // The section's first table lists the probes; its second, the metrics (not probe names).
    for (const auto& name : documented) {
        if (!name.starts_with("mailcanary_")) probe_rows.insert(name);
    }
    EXPECT_EQ(probe_rows, kinds);
}

// The metric families of the golden /metrics contract (tests/golden/metrics_contract.txt, which
// the MetricsContract integration test holds to what the agent serves) against the first column
// of every table in docs/metrics.md.
TEST(ContractDocs, EveryMetricFamilyIsDocumentedAndNoOther) {
    std::set<std::string> families;
    std::istringstream golden(source_file("tests/golden/metrics_contract.txt"));
    for (std::string line; std::getline(golden, line);) {
        if (!line.empty() && line[0] != '#') families.insert(line.substr(0, line.find(' ')));
    }
    ASSERT_GT(families.size(), 30u);
    std::set<std::string> documented;
    std::istringstream doc(metrics_doc());
    for (std::string line; std::getline(doc, line);) {
        if (line == kProbeEndpointHeading) break;  // not /metrics: the next test's
        if (!line.starts_with("| `")) continue;
        const std::string name = line.substr(3, line.find('`', 3) - 3);
        if (name.starts_with("mailcanary_") || name.starts_with("process_"))
            documented.insert(name);
    }
    EXPECT_EQ(documented, families);
}

// The families /probe can answer with (every one present: TLS, a phase, a failure) against the
// first column of the "/probe" section.
TEST(ContractDocs, EveryProbeEndpointFamilyIsDocumentedAndNoOther) {
    ProbeRuns runs;
    Scheduler::AskedRun run;
    run.metrics.tls_version = "TLSv1.3";
    run.metrics.cert_not_after = std::chrono::system_clock::now();
    run.metrics.add_phase(Phase::banner, std::chrono::milliseconds(1));
    run.result.outcome = Outcome::failed(FailureReason::tls_cert_expired, "expired");
    runs.runs.push_back({"connect", std::move(run)});
    std::set<std::string> families;
    std::istringstream text(render_probe_metrics(runs));
    for (std::string line; std::getline(text, line);) {
        if (line.starts_with("# TYPE ")) families.insert(line.substr(7, line.find(' ', 7) - 7));
    }
    EXPECT_EQ(first_column(metrics_doc(), std::string(kProbeEndpointHeading)), families);
}

TEST(ContractDocs, TheNamesAreTheEnumeratorsInOrder) {
    // The tables make the names from the enumerators: spot-check both ends of each.
    EXPECT_EQ(to_string(kAllPhases.front()), "resolve");
    EXPECT_EQ(to_string(Phase::logout), "logout");
    EXPECT_EQ(to_string(kAllFailureReasons.front()), "dns");
    EXPECT_EQ(to_string(FailureReason::descriptors_exhausted), "descriptors_exhausted");
    EXPECT_EQ(static_cast<std::size_t>(FailureReason::descriptors_exhausted),
              kAllFailureReasons.size() - 1);
}

}  // namespace
}  // namespace mailcanary
