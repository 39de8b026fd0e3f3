// The imap probe's table, [targets.imap], as the loader reads it through the kind: defaults,
// located errors with suggestions, what it requires, and what a reload compares.
#include "probes/imap_probe.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "agent/config.hpp"
#include "probes/registry.hpp"

namespace mailcanary {
namespace {

constexpr std::string_view kFile = "imap.toml";

// Lines 1-4: a target running the imap probe; line 5 opens [targets.imap] with a login on lines
// 6-7; cases add fields from line 8.
std::string imap_target_with(std::string_view fields) {
    return "[[targets]]\nname = \"imap1\"\nhost = \"imap.example.net\"\nprobes = [\"imap\"]\n"
           "[targets.imap]\nusername = \"canary\"\ntoken_file = \"/run/token\"\n" +
           std::string(fields);
}

ConfigResult load(const std::string& text) { return load_config_string(text, std::string(kFile)); }

const ImapOptions* imap_of(const ConfigResult& result) {
    return result.config->targets.at(0).probe_options.find<ImapOptions>("imap");
}

std::string all_errors(const ConfigResult& result) {
    std::string text;
    for (const ConfigError& error : result.errors) text += error.to_string() + "\n";
    return text;
}

TEST(ImapProbeConfig, DefaultsFollowTheTargetAndTheTlsMode) {
    const ConfigResult implicit = load(imap_target_with(""));
    ASSERT_TRUE(implicit.errors.empty()) << all_errors(implicit);
    const ImapOptions* options = imap_of(implicit);
    ASSERT_NE(options, nullptr);
    EXPECT_EQ(options->host, "imap.example.net");
    EXPECT_EQ(options->tls, TlsMode::implicit);
    EXPECT_EQ(options->port, 993);
    EXPECT_EQ(options->mailbox, "INBOX");
    EXPECT_FALSE(options->allow_plaintext_auth);
    EXPECT_EQ(options->auth.username, "canary");
    EXPECT_EQ(options->auth.token_file, "/run/token");

    const ConfigResult starttls = load(imap_target_with("tls = \"starttls\"\n"));
    ASSERT_TRUE(starttls.errors.empty()) << all_errors(starttls);
    EXPECT_EQ(imap_of(starttls)->port, 143);

    const ConfigResult given = load(imap_target_with(
        "host = \"other.example.net\"\nport = 10993\nmailbox = \"Archive/2026\"\n"
        "allow_plaintext_auth = true\n[targets.imap.tls_options]\nserver_name = \"imap.test\"\n"));
    ASSERT_TRUE(given.errors.empty()) << all_errors(given);
    EXPECT_EQ(imap_of(given)->host, "other.example.net");
    EXPECT_EQ(imap_of(given)->port, 10993);
    EXPECT_EQ(imap_of(given)->mailbox, "Archive/2026");
    EXPECT_TRUE(imap_of(given)->allow_plaintext_auth);
    EXPECT_EQ(imap_of(given)->tls_options.server_name, "imap.test");
}

TEST(ImapProbeConfig, MistakesAreLocatedWithTheirKey) {
    struct Case {
        std::string fields;
        unsigned line;
        unsigned column;
        std::string key;
        std::string message_part;
    };
    const Case cases[] = {
        {"mailbx = \"INBOX\"\n", 8, 1, "targets[1].imap.mailbx", "did you mean \"mailbox\"?"},
        {"port = 0\n", 8, 8, "targets[1].imap.port", "between 1 and 65535"},
        {"tls = \"ssl\"\n", 8, 7, "targets[1].imap.tls", "unknown TLS mode \"ssl\""},
        {"mailbox = \"\"\n", 8, 11, "targets[1].imap.mailbox", "must not be empty"},
        {"mechanism = \"cram-md5\"\n", 8, 13, "targets[1].imap.mechanism",
         "not supported for IMAP"},
        // PATH is set, so the only problem is the second source.
        {"password_env = \"PATH\"\n", 8, 16, "targets[1].imap.password_env", "give only one of"},
        {"[targets.imap.tls_options]\nservername = \"x\"\n", 9, 1,
         "targets[1].imap.tls_options.servername", "did you mean \"server_name\"?"},
    };
    for (const Case& test : cases) {
        SCOPED_TRACE(test.fields);
        const ConfigResult result = load(imap_target_with(test.fields));
        ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
        const ConfigError& error = result.errors.front();
        EXPECT_EQ(error.file, kFile);
        EXPECT_EQ(error.line, test.line) << error.to_string();
        EXPECT_EQ(error.column, test.column) << error.to_string();
        EXPECT_EQ(error.key, test.key);
        EXPECT_NE(error.message.find(test.message_part), std::string::npos) << error.to_string();
    }
}

TEST(ImapProbeConfig, TheProbeNeedsItsTableAndTheTableItsLogin) {
    const ConfigResult without_table =
        load("[[targets]]\nname = \"imap1\"\nhost = \"imap.example.net\"\nprobes = [\"imap\"]\n");
    ASSERT_EQ(without_table.errors.size(), 1u) << all_errors(without_table);
    EXPECT_EQ(without_table.errors[0].key, "targets[1].probes");
    EXPECT_EQ(without_table.errors[0].line, 4u);
    EXPECT_NE(without_table.errors[0].message.find("needs a [targets.imap] table"),
              std::string::npos);

    const ConfigResult without_login = load(
        "[[targets]]\nname = \"imap1\"\nhost = \"imap.example.net\"\nprobes = [\"imap\"]\n"
        "[targets.imap]\nmailbox = \"INBOX\"\n");
    const std::string errors = all_errors(without_login);
    EXPECT_NE(errors.find("targets[1].imap.username: required key is missing"), std::string::npos)
        << errors;
    EXPECT_NE(errors.find("targets[1].imap: needs one of password_env"), std::string::npos)
        << errors;

    // [defaults] holds no probe tables.
    const ConfigResult in_defaults = load("[defaults]\nimap = { mailbox = \"INBOX\" }\n");
    ASSERT_EQ(in_defaults.errors.size(), 1u) << all_errors(in_defaults);
    EXPECT_EQ(in_defaults.errors[0].key, "defaults.imap");
}

TEST(ImapProbeConfig, ATableWithoutTheProbeIsStillChecked) {
    const ConfigResult result = load(
        "[[targets]]\nname = \"mx1\"\nhost = \"mx1.example.net\"\n[targets.imap]\n"
        "username = \"canary\"\ntoken_file = \"/t\"\nmalbox = \"x\"\n");
    ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
    EXPECT_EQ(result.errors[0].key, "targets[1].imap.malbox");
}

TEST(ImapProbeConfig, AReloadSeesAChangedTableAsAChangedTarget) {
    const ConfigResult first = load(imap_target_with("mailbox = \"INBOX\"\n"));
    const ConfigResult same = load(imap_target_with("mailbox = \"INBOX\"\n"));
    const ConfigResult changed = load(imap_target_with("mailbox = \"Archive\"\n"));
    ASSERT_TRUE(first.config && same.config && changed.config);
    EXPECT_EQ(first.config->targets[0], same.config->targets[0]);
    EXPECT_NE(first.config->targets[0], changed.config->targets[0]);
}

TEST(ImapProbeKind, IsRegisteredAndNamesItsPhasesAndReasons) {
    ASSERT_EQ(find_probe("imap"), &imap_probe());
    const auto phases = imap_probe().phases();
    for (const Phase phase : {Phase::greeting, Phase::capability, Phase::select, Phase::logout}) {
        EXPECT_NE(std::find(phases.begin(), phases.end(), phase), phases.end()) << to_string(phase);
    }
    const auto reasons = imap_probe().reasons();
    for (const FailureReason reason :
         {FailureReason::auth_rejected, FailureReason::tls_cert_untrusted,
          FailureReason::connect_refused, FailureReason::select_rejected,
          FailureReason::greeting_rejected}) {
        EXPECT_NE(std::find(reasons.begin(), reasons.end(), reason), reasons.end())
            << to_string(reason);
    }
}

}  // namespace
}  // namespace mailcanary
