// Folders by their real names, against the real Dovecot set up as Exchange Online lists a
// mailbox (tests/stack/mailstack.sh, user "exchange"): no special-use flags at all, the junk
// folder named "Junk Email" (Sieve files the stack's junk-marked mail there), the trash
// "Deleted Items", and a folder named in Cyrillic, which goes over the wire in modified UTF-7.
#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class ProviderFolders : public AgentIntegration {
  protected:
    std::string user() const { return env_.at("MAILSTACK_EXCHANGE_USER"); }
    std::string login() const {
        return "username = \"" + user() + "\"\npassword_file = \"" +
               env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n";
    }
    fs::path folder(const std::string& name) const {
        return fs::path(env_.at("MAILSTACK_MAIL_DIR")) / env_.at("MAILSTACK_DOMAIN") / "exchange" /
               "Maildir" / ("." + name);
    }
};

TEST_F(ProviderFolders, JunkInExchangesJunkEmailIsJunkNotLostAndTheTrashIsDeletedItems) {
    AgentProcess agent(
        dir_,
        header() + target("exchange-junk", port("MAILSTACK_SMTP_PORT"), "starttls",
                          "probes = [\"roundtrip\"]\n" + tls_options() +
                              "[targets.message]\nfrom = \"canary@mailcanary.test\"\n"
                              "to = [\"" +
                              user() + "\"]\n[targets.message.headers]\n" +
                              env_.at("MAILSTACK_JUNK_HEADER") +
                              " = \"yes\"\n[targets.roundtrip]\nimap_host = \"" + host() +
                              "\"\nimap_port = " + port("MAILSTACK_IMAPS_PORT") + "\n" + login() +
                              "timeout = \"10s\"\ncleanup = \"trash\"\n"
                              "[targets.roundtrip.tls_options]\nca_file = \"" +
                              ca() + "\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const std::string junk =
        R"(mailcanary_roundtrip_delivered_total{folder="junk",target="exchange-junk"})";
    const auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, junk) >= 1; }, 15s);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    ASSERT_GE(value_of(text, junk), 1) << text << agent.log();
    EXPECT_GE(value_of(text, R"(mailcanary_probe_failures_total{probe="roundtrip",reason="junk",)"
                             R"(target="exchange-junk"})"),
              1)
        << text;
    EXPECT_LE(value_of(text, R"(mailcanary_probe_failures_total{probe="roundtrip",reason="lost",)"
                             R"(target="exchange-junk"})"),
              0)
        << text;
    // What was watched, and how it was found, is in the log once.
    const std::string log = agent.log();
    EXPECT_NE(log.find("msg=\"watched folders\""), std::string::npos) << log;
    EXPECT_NE(log.find("junk=\"Junk Email\" junk_found_by=names trash=\"Deleted Items\""),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("no junk folder found"), std::string::npos) << log;
    // cleanup = "trash" moved the probe messages into the trash found by its name.
    EXPECT_GE(messages_containing(folder("Deleted Items"), ".mailcanary@probe.mailcanary.test"), 1);
    EXPECT_EQ(log.find("cannot move a probe message to the trash"), std::string::npos) << log;
}

// cleanup = "delete" through the trash, as the agent deletes on Gmail (there by X-GM-EXT-1,
// here by delete_method), against Dovecot's real COPYUID: a one-shot run moves its message to
// "Deleted Items" and expunges the copy there, and no copy is left in any folder.
TEST_F(ProviderFolders, DeleteViaTheTrashLeavesNoCopyInAnyFolder) {
    const fs::path maildir = folder("Deleted Items").parent_path();
    const auto probe_messages = [&] {
        int found = messages_containing(maildir, ".mailcanary@probe.mailcanary.test");
        for (const auto& entry : fs::directory_iterator(maildir)) {
            if (entry.is_directory() && entry.path().filename().string().starts_with(".")) {
                found += messages_containing(entry.path(), ".mailcanary@probe.mailcanary.test");
            }
        }
        return found;
    };
    const int before = probe_messages();
    const fs::path config = dir_ / "via-trash.toml";
    std::ofstream(config) << header()
                          << target("via-trash", port("MAILSTACK_SMTP_PORT"), "starttls",
                                    "probes = [\"roundtrip\"]\n" + tls_options() +
                                        "[targets.message]\nfrom = \"canary@mailcanary.test\"\n"
                                        "to = [\"" +
                                        user() + "\"]\n[targets.roundtrip]\nimap_host = \"" +
                                        host() + "\"\nimap_port = " + port("MAILSTACK_IMAPS_PORT") +
                                        "\n" + login() +
                                        "timeout = \"10s\"\ndelete_method = \"via_trash\"\n"
                                        "[targets.roundtrip.tls_options]\nca_file = \"" +
                                        ca() + "\"\n");
    const auto run =
        run_binary({"--config.file=" + config.string(), "--probe=via-trash"}, dir_ / "run.txt");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("[INBOX] UID MOVE"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("[Deleted Items] UID EXPUNGE"), std::string::npos) << run.output;
    EXPECT_EQ(probe_messages(), before) << "a copy is left:\n" << run.output;
}

TEST_F(ProviderFolders, AMailboxNamedInCyrillicIsSelected) {
    // Before modified UTF-7, the name went out as "" and SELECT failed (select_rejected).
    AgentProcess agent(
        dir_,
        header() +
            target("cyrillic", port("MAILSTACK_SMTP_PORT"), "starttls",
                   "probes = [\"imap\"]\n[targets.imap]\nport = " + port("MAILSTACK_IMAPS_PORT") +
                       "\ntls = \"implicit\"\nmailbox = \"Корзина\"\n" + login() +
                       "[targets.imap.tls_options]\n" + "ca_file = \"" + ca() + "\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"cyrillic"}, "imap"), 15s);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("cyrillic", "imap")), 1) << text << agent.log();
    EXPECT_EQ(value_of(text, "mailcanary_imap_mailbox_messages{target=\"cyrillic\"}"), 0) << text;
}

}  // namespace
}  // namespace mailcanary::test
