// The public contract of /metrics, compared with a golden file (tests/golden/metrics_contract.txt):
// every metric family's name, TYPE and HELP, and the label names its samples carry. Label values
// and sample values are not part of it. The agent runs with every probe kind against the real
// stack, in the cases that make the families appear that not every agent has, so that a change
// meant to be invisible to users (a refactoring) cannot drop, rename or retype one unnoticed.
//
// MAILCANARY_UPDATE_GOLDEN=1 rewrites the golden file in the source tree instead of comparing
// (docs/testing.md); the change is then reviewed as a diff of that file.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "integration/harness.hpp"
#include "protocols/credentials.hpp"
#include "protocols/token.hpp"

namespace mailcanary::test {
namespace {

const fs::path kGoldenFile = fs::path(MAILCANARY_SOURCE_DIR) / "tests/golden/metrics_contract.txt";

// --- An exposition reduced to its contract --------------------------------------------------

struct FamilyContract {
    std::string type = "untyped";  // without a TYPE line, as Prometheus reads it
    std::optional<std::string> help;
    // Per sample name, as the suffix after the family's name ("" for the name itself, "_bucket",
    // "_count", "_sum"): each distinct set of label names its samples carry.
    std::map<std::string, std::set<std::set<std::string>>> samples;
};
using Contract = std::map<std::string, FamilyContract>;

// HELP text as exposed escapes backslash and line feed.
std::string unescape_help(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            ++i;
            out += text[i] == 'n' ? '\n' : text[i];
        } else {
            out += text[i];
        }
    }
    return out;
}

// The label names of a sample line's `{...}`, from just after the `{`; values are skipped with
// their escapes (a value may hold `,`, `}` or `"`). Empty with `problem` set when malformed.
std::set<std::string> label_names(std::string_view line, std::size_t at, std::string& problem) {
    std::set<std::string> names;
    while (at < line.size() && line[at] != '}') {
        const auto equals = line.find('=', at);
        if (equals == std::string_view::npos || equals + 1 >= line.size() ||
            line[equals + 1] != '"') {
            problem = "malformed labels";
            return {};
        }
        names.insert(std::string(line.substr(at, equals - at)));
        at = equals + 2;
        while (at < line.size() && line[at] != '"') at += line[at] == '\\' ? 2 : 1;
        if (at >= line.size()) {
            problem = "unterminated label value";
            return {};
        }
        ++at;  // the closing quote
        if (at < line.size() && line[at] == ',') ++at;
    }
    if (at >= line.size()) problem = "unterminated labels";
    return names;
}

Contract reduce(const std::string& exposition, std::vector<std::string>& problems) {
    Contract contract;
    std::string current;  // the family of the last HELP or TYPE line
    std::istringstream lines(exposition);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const std::string_view rest = std::string_view(line).substr(7);
            const auto space = rest.find(' ');
            current = std::string(rest.substr(0, space));
            const std::string_view text =
                space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
            auto& family = contract[current];
            if (line[2] == 'H') {
                family.help = unescape_help(text);
            } else {
                family.type = std::string(text);
            }
            continue;
        }
        if (line[0] == '#') continue;  // a comment
        const auto name_end = line.find_first_of("{ ");
        const std::string name = line.substr(0, name_end);
        // A sample belongs to the family announced before it if its name extends that family's.
        const bool in_current = !current.empty() && name.starts_with(current);
        const std::string family_name = in_current ? current : name;
        std::string problem;
        std::set<std::string> names;
        if (name_end != std::string::npos && line[name_end] == '{') {
            names = label_names(line, name_end + 1, problem);
        }
        if (!problem.empty()) problems.push_back(problem + ": " + line);
        contract[family_name].samples[name.substr(family_name.size())].insert(std::move(names));
    }
    return contract;
}

std::string help_literal(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out + '"';
}

// `<family> <type> "<HELP>" <suffix>{<label names>}...`, e.g.
// `mailcanary_probe_duration_seconds histogram "..." _bucket{le,probe,target}
// _count{probe,target}`.
std::string contract_line(const std::string& name, const FamilyContract& family) {
    std::string line =
        name + " " + family.type + " " + (family.help ? help_literal(*family.help) : "-");
    for (const auto& [suffix, label_sets] : family.samples) {
        for (const auto& labels : label_sets) {
            line += " " + suffix + "{";
            bool first = true;
            for (const auto& label : labels) {
                if (!first) line += ",";
                line += label;
                first = false;
            }
            line += "}";
        }
    }
    return line;
}

// The configurations the agent runs with. A family line seen with only one of them says so.
struct Variant {
    std::string name;          // in the golden file: `only_with=<name>`
    std::string dir;           // the agent's directory, under the test's
    std::string metrics_toml;  // the [metrics] table
};
const std::vector<Variant> kVariants = {
    // The default: nothing in [metrics], so the default itself is what is checked.
    {"phase_histograms=true", "histograms", ""},
    {"phase_histograms=false", "last-durations", "[metrics]\nphase_histograms = false\n\n"},
};

std::string golden_text(const std::vector<Contract>& contracts) {
    std::map<std::string, std::vector<std::string>> seen_with;  // line -> variants
    for (std::size_t i = 0; i < contracts.size(); ++i) {
        for (const auto& [name, family] : contracts[i]) {
            seen_with[contract_line(name, family)].push_back(kVariants[i].name);
        }
    }
    std::vector<std::string> lines;
    lines.reserve(seen_with.size());
    for (const auto& [line, variants] : seen_with) {
        lines.push_back(
            variants.size() == contracts.size() ? line : line + " only_with=" + variants.front());
    }
    std::sort(lines.begin(), lines.end());
    std::string text =
        "# The public contract of mailcanary's /metrics, checked by "
        "tests/integration/contract_test.cpp.\n"
        "# One line per metric family, sorted: <family> <TYPE> \"<HELP>\" <suffix>{<label "
        "names>}..., with one\n"
        "# <suffix>{...} per sample name: the family's name plus the suffix (e.g. _bucket; none "
        "for the name\n"
        "# itself). Label values and sample values are not part of the contract.\n"
        "# only_with=<[metrics] setting>: the family appears with that setting only.\n"
        "# Regenerate with MAILCANARY_UPDATE_GOLDEN=1 and review the diff (docs/testing.md).\n";
    for (const auto& line : lines) text += line + "\n";
    return text;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Lines only in the golden file (-) and lines only in what the agent serves (+), in sorted
// order, and which families were removed, added or changed.
std::string difference(const std::string& golden, const std::string& actual) {
    const auto golden_lines = split_lines(golden);
    const auto actual_lines = split_lines(actual);
    const std::multiset<std::string> in_golden(golden_lines.begin(), golden_lines.end());
    const std::multiset<std::string> in_actual(actual_lines.begin(), actual_lines.end());
    std::vector<std::string> missing;
    std::vector<std::string> unexpected;
    std::set_difference(in_golden.begin(), in_golden.end(), in_actual.begin(), in_actual.end(),
                        std::back_inserter(missing));
    std::set_difference(in_actual.begin(), in_actual.end(), in_golden.begin(), in_golden.end(),
                        std::back_inserter(unexpected));
    const auto family_of = [](const std::string& line) { return line.substr(0, line.find(' ')); };
    // By family, and within one the golden line (-) before the served one (+), as in a diff.
    std::vector<std::tuple<std::string, int, std::string>> merged;
    merged.reserve(missing.size() + unexpected.size());
    for (const auto& line : missing) merged.emplace_back(family_of(line), 0, line);
    for (const auto& line : unexpected) merged.emplace_back(family_of(line), 1, line);
    std::sort(merged.begin(), merged.end());
    std::set<std::string> removed;
    std::set<std::string> added;
    for (const auto& line : missing) {
        if (!line.starts_with("#")) removed.insert(family_of(line));
    }
    for (const auto& line : unexpected) {
        if (!line.starts_with("#")) added.insert(family_of(line));
    }
    std::string out = "--- " + kGoldenFile.string() + " (expected)\n+++ /metrics (served)\n";
    for (const auto& [family, side, line] : merged) out += (side == 0 ? "- " : "+ ") + line + "\n";
    std::set<std::string> changed;
    std::set_intersection(removed.begin(), removed.end(), added.begin(), added.end(),
                          std::inserter(changed, changed.end()));
    for (const auto& family : changed) {
        removed.erase(family);
        added.erase(family);
    }
    const auto list = [](const std::set<std::string>& families) {
        std::string text;
        for (const auto& family : families) text += " " + family;
        return text.empty() ? std::string(" none") : text;
    };
    out += "families removed:" + list(removed) + "\nfamilies added:" + list(added) +
           "\nfamilies changed:" + list(changed) + "\n";
    return out;
}

// --- The agent in the cases that make every family appear ------------------------------------

class MetricsContract : public AgentIntegration {
  protected:
    // One of the agent's own probe messages that no run waits for, delivered an hour ago and
    // signed with a deadline as old: the agent's first read of the mailbox removes it as a
    // leftover, which is what creates mailcanary_roundtrip_leftovers_removed_total. Its token is
    // made with the secret the agent will find beside its configuration.
    void seed_leftover(const fs::path& agent_dir) const {
        std::string problem;
        const auto secret =
            load_or_create_secret((agent_dir / "mailcanary.secret").string(), problem);
        ASSERT_TRUE(secret) << problem;
        const std::string name = std::to_string(std::time(nullptr)) + ".P" +
                                 std::to_string(getpid()) + "_" + agent_dir.filename().string() +
                                 ".contract-test";
        store_in_probe_inbox(name,
                             "From: canary@mailcanary.test\nTo: " + env_.at("MAILSTACK_USER") +
                                 "\nSubject: mailcanary probe\nMessage-ID: <" + name +
                                 "@mailcanary.test>\nX-Mailcanary-Token: " +
                                 make_token(*secret, std::chrono::system_clock::now() - 1h) +
                                 "\n\nleft over by an earlier run\n",
                             1h);
    }

    // Every probe kind (imap since issue 11), and the cases behind the families not every agent
    // has: a failure (failures_total), TLS (tls_info, the certificate's expiry), a delivered
    // message with verdicts (roundtrip auth_result) and two dated Received headers (Postfix's and
    // LMTP's: server_clock_delivery_seconds).
    std::string config(const Variant& variant) const {
        const std::string user = env_.at("MAILSTACK_USER");
        const std::string password_file = env_.at("MAILSTACK_PASSWORD_FILE");
        const std::string credentials =
            "username = \"" + user + "\"\npassword_file = \"" + password_file + "\"\n";
        // The stack's DNS server, for the mx target.
        return "[agent]\ndns_servers = [\"127.0.0.1:" + port("MAILSTACK_DNS_PORT") + "\"]\n\n" +
               variant.metrics_toml + header() +
               target("healthy", port("MAILSTACK_SMTP_PORT"), "starttls", tls_options()) +
               target("closed", "1", "none") +
               // Dual-stack (issue 15): each family its own series, labelled ip_family; the
               // address has no IPv6 one, so the v6 instance fails (dns).
               target("dual", port("MAILSTACK_SMTP_PORT"), "none", "ip = \"both\"\n") +
               // MX-aware (issue 15): each MX host of canary.test its own series, mx_host.
               "[[targets]]\nname = \"mx\"\nmx = \"canary.test\"\nport = " +
               port("MAILSTACK_SMTP_PORT") + "\ntls = \"none\"\n\n" +
               target("auth", port("MAILSTACK_SUBMISSION_PORT"), "starttls",
                      "probes = [\"auth\"]\n" + tls_options() + "[targets.auth]\n" + credentials) +
               // To the other user: the round trip's mailbox sees only its own messages.
               target("accept", port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"accept\"]\n" + tls_options() +
                          "[targets.message]\nfrom = \"canary@mailcanary.test\"\nto = [\"other@" +
                          env_.at("MAILSTACK_DOMAIN") + "\"]\n") +
               target("roundtrip", port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"roundtrip\"]\n" + tls_options() +
                          "[targets.message]\nfrom = \"canary@mailcanary.test\"\nto = [\"" + user +
                          "\"]\n[targets.message.headers]\nAuthentication-Results = "
                          "\"mx.example.test; spf=pass smtp.mailfrom=canary@mailcanary.test; "
                          "dkim=pass header.d=mailcanary.test; dmarc=pass\"\n"
                          "[targets.roundtrip]\nimap_host = \"" +
                          host() + "\"\nimap_port = " + port("MAILSTACK_IMAPS_PORT") +
                          "\nimap_tls = \"implicit\"\ntimeout = \"10s\"\n" + credentials +
                          "[targets.roundtrip.tls_options]\nca_file = \"" + ca() + "\"\n") +
               target("imap", port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"imap\"]\n[targets.imap]\nport = " +
                          port("MAILSTACK_IMAPS_PORT") + "\n" + credentials +
                          "[targets.imap.tls_options]\nca_file = \"" + ca() + "\"\n");
    }
};

struct Condition {
    std::string what;
    std::function<bool(const std::string&)> holds;
};

bool has_family(const std::string& text, const std::string& family) {
    return text.starts_with(family + "{") || text.find("\n" + family + "{") != std::string::npos;
}

// What must have happened before a scrape shows the whole contract. The agent-wide families
// (the mailcanary_roundtrip_* ones among them) are written before the per-(target, probe) ones,
// and a roundtrip run records its result before its delivery: they are waited for themselves.
std::vector<Condition> conditions() {
    std::vector<Condition> all;
    for (const auto& [target, probe] :
         std::vector<std::pair<std::string, std::string>>{{"healthy", "connect"},
                                                          {"auth", "auth"},
                                                          {"accept", "accept"},
                                                          {"roundtrip", "roundtrip"},
                                                          {"imap", "imap"}}) {
        all.push_back({"the last " + probe + " run of " + target + " succeeded",
                       [series = success_series(target, probe)](const std::string& text) {
                           return value_of(text, series) == 1;
                       }});
    }
    all.push_back({"the connect run of closed failed", [](const std::string& text) {
                       return value_of(text, success_series("closed")) == 0;
                   }});
    all.push_back(
        {"the v4 connect run of dual succeeded and its v6 one failed", [](const std::string& text) {
             const std::string v4 =
                 R"(mailcanary_probe_success{ip_family="v4",probe="connect",target="dual"})";
             const std::string v6 =
                 R"(mailcanary_probe_success{ip_family="v6",probe="connect",target="dual"})";
             return value_of(text, v4) == 1 && value_of(text, v6) == 0;
         }});
    all.push_back(
        {"the connect runs of both MX hosts of mx succeeded", [](const std::string& text) {
             const auto success = [&](const std::string& host) {
                 return value_of(text, R"(mailcanary_probe_success{mx_host=")" + host +
                                           R"(",probe="connect",target="mx"})") == 1;
             };
             return success("mail.canary.test") && success("v4only.canary.test");
         }});
    for (const char* family :
         {"mailcanary_roundtrip_auth_result", "mailcanary_roundtrip_server_clock_delivery_seconds",
          "mailcanary_roundtrip_leftovers_removed_total"}) {
        all.push_back({std::string(family) + " has a series",
                       [family](const std::string& text) { return has_family(text, family); }});
    }
    return all;
}

std::string unmet(const std::string& text) {
    std::string out;
    for (const auto& condition : conditions()) {
        if (!condition.holds(text)) out += "  not seen: " + condition.what + "\n";
    }
    return out;
}

TEST_F(MetricsContract, MetricsMatchTheGoldenFile) {
    // Both variants at once, each agent in its own directory with its own secret.
    std::vector<std::unique_ptr<AgentProcess>> agents;
    for (const auto& variant : kVariants) {
        const fs::path agent_dir = dir_ / variant.dir;
        fs::create_directories(agent_dir);
        seed_leftover(agent_dir);
        if (HasFatalFailure()) return;
        agents.push_back(std::make_unique<AgentProcess>(agent_dir, config(variant)));
        ASSERT_TRUE(agents.back()->started()) << agents.back()->log();
    }
    // Both agents run meanwhile: one bound for the two.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::vector<Contract> contracts;
    std::string not_seen;
    for (std::size_t i = 0; i < agents.size(); ++i) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::max<Clock::duration>(deadline - Clock::now(), Clock::duration::zero()));
        const std::string text =
            agents[i]->wait_for([](const std::string& t) { return unmet(t).empty(); }, left);
        if (const auto missing = unmet(text); !missing.empty()) {
            not_seen += "with " + kVariants[i].name + ", within 30 s of the start:\n" + missing +
                        "  (a renamed family shows here too; see the difference below)\n"
                        "  the agent's log: " +
                        (dir_ / kVariants[i].dir / "agent.log").string() + "\n";
        }
        std::vector<std::string> problems;
        contracts.push_back(reduce(text, problems));
        for (const auto& problem : problems) ADD_FAILURE() << kVariants[i].name << ": " << problem;
    }
    for (auto& agent : agents) EXPECT_EQ(agent->stop(SIGTERM, std::chrono::seconds(3)), 0);
    const std::string actual = golden_text(contracts);

    if (const char* update = std::getenv("MAILCANARY_UPDATE_GOLDEN");
        update != nullptr && std::string(update) == "1") {
        // A golden file from an agent that did not get everywhere would drop families.
        if (!not_seen.empty()) FAIL() << "not writing " << kGoldenFile << ":\n" << not_seen;
        fs::create_directories(kGoldenFile.parent_path());
        std::ofstream(kGoldenFile) << actual;
        std::cout << "MAILCANARY_UPDATE_GOLDEN=1: wrote " << split_lines(actual).size()
                  << " lines to " << kGoldenFile << "; review them with git diff.\n";
        return;
    }
    if (!not_seen.empty()) ADD_FAILURE() << not_seen;
    const std::string golden = read_file(kGoldenFile);
    ASSERT_FALSE(golden.empty()) << kGoldenFile << " is missing or empty; create it with "
                                 << "MAILCANARY_UPDATE_GOLDEN=1 (docs/testing.md)";
    if (golden != actual) {
        ADD_FAILURE()
            << "/metrics differs from the golden file: a family or label name was added, removed "
               "or renamed, or a TYPE or HELP changed.\n"
            << difference(golden, actual)
            << "If the change is intended, regenerate the golden file and commit it for review:\n"
               "  MAILCANARY_UPDATE_GOLDEN=1 ctest --preset release -R "
               "'mailstack|MetricsContract'\n";
    }
}

// The reduction itself, on a fixed exposition: no stack needed, but it lives with its test.
TEST(MetricsContractReduction, KeepsNamesTypesHelpAndLabelNamesOnly) {
    const std::string exposition =
        "# HELP a_seconds Time, with a \\\\ and a\\nnew line.\n"
        "# TYPE a_seconds histogram\n"
        "a_seconds_count{probe=\"p\",target=\"x,}\\\"y\"} 2\n"
        "a_seconds_sum{probe=\"p\",target=\"t\"} 0.5\n"
        "a_seconds_bucket{probe=\"p\",target=\"t\",le=\"0.1\"} 1\n"
        "a_seconds_bucket{probe=\"q\",target=\"t\",le=\"+Inf\"} 2\n"
        "# TYPE b gauge\n"
        "b 1\n"
        "# a comment\n"
        "c_total{x=\"1\"} 3\n";
    std::vector<std::string> problems;
    const Contract contract = reduce(exposition, problems);
    EXPECT_TRUE(problems.empty());
    ASSERT_EQ(contract.size(), 3u);
    EXPECT_EQ(contract_line("a_seconds", contract.at("a_seconds")),
              "a_seconds histogram \"Time, with a \\\\ and a\\nnew line.\" "
              "_bucket{le,probe,target} _count{probe,target} _sum{probe,target}");
    EXPECT_EQ(contract_line("b", contract.at("b")), "b gauge - {}");
    EXPECT_EQ(contract_line("c_total", contract.at("c_total")), "c_total untyped - {x}");

    // A label set that differs between samples shows both.
    const Contract mixed = reduce("# TYPE m gauge\nm{a=\"1\"} 1\nm{a=\"1\",b=\"2\"} 1\n", problems);
    EXPECT_EQ(contract_line("m", mixed.at("m")), "m gauge - {a} {a,b}");

    reduce("m{a=\"1} 1\n", problems);
    EXPECT_EQ(problems.size(), 1u);
}

}  // namespace
}  // namespace mailcanary::test
