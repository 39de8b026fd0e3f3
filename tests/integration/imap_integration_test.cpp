// The imap probe against the real Dovecot of the test stack: implicit TLS and STARTTLS, a wrong
// password, an untrusted certificate, a closed port, a mailbox that does not exist.
#include <regex>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class ImapIntegration : public AgentIntegration {
  protected:
    // A target running only the imap probe as the stack's probe user; `extra` goes into
    // [targets.imap], `tls_extra` into its [targets.imap.tls_options].
    std::string imap_target(const std::string& name, const std::string& port_value,
                            const std::string& tls, const std::string& extra = "",
                            const std::string& tls_extra = "") const {
        return target(name, port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"imap\"]\n[targets.imap]\nport = " + port_value + "\ntls = \"" +
                          tls + "\"\nusername = \"" + env_.at("MAILSTACK_USER") +
                          "\"\npassword_file = \"" + env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n" +
                          extra + "[targets.imap.tls_options]\n" + tls_extra);
    }
    std::string trusted() const { return "ca_file = \"" + ca() + "\"\n"; }
};

std::string imap_failures(const std::string& target, const std::string& reason) {
    return R"(mailcanary_probe_failures_total{probe="imap",reason=")" + reason + R"(",target=")" +
           target + "\"}";
}

std::string imap_phase_count(const std::string& target, const std::string& phase) {
    return R"(mailcanary_probe_phase_duration_seconds_count{phase=")" + phase +
           R"(",probe="imap",target=")" + target + "\"}";
}

TEST_F(ImapIntegration, LogsInAndSelectsOverImplicitTlsAndStarttls) {
    AgentProcess agent(
        dir_,
        header() + imap_target("imaps", port("MAILSTACK_IMAPS_PORT"), "implicit", "", trusted()) +
            imap_target("imap-starttls", port("MAILSTACK_IMAP_PORT"), "starttls", "", trusted()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"imaps", "imap-starttls"}, "imap"), 15s);
    for (const std::string name : {"imaps", "imap-starttls"}) {
        SCOPED_TRACE(name);
        ASSERT_EQ(value_of(text, success_series(name, "imap")), 1) << text << agent.log();
        for (const std::string phase :
             {"resolve", "connect", "tls_handshake", "greeting", "auth", "select", "logout"}) {
            EXPECT_GE(value_of(text, imap_phase_count(name, phase)), 1) << phase << "\n" << text;
        }
        // The stack's user has a mailbox; its count is whatever the other tests left there.
        EXPECT_GE(value_of(text, "mailcanary_imap_mailbox_messages{target=\"" + name + "\"}"), 0)
            << text;
        EXPECT_GT(value_of(text, R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="imap",)"
                                 R"(target=")" +
                                     name + "\"}"),
                  0)
            << text;
    }
    EXPECT_GE(value_of(text, imap_phase_count("imap-starttls", "starttls")), 1) << text;
    // After STARTTLS the capabilities must be asked for again (RFC 9051 6.2.1); Dovecot's
    // greeting on 993 lists them, so no CAPABILITY command is needed there.
    EXPECT_GE(value_of(text, imap_phase_count("imap-starttls", "capability")), 1) << text;
    EXPECT_EQ(value_of(text, imap_phase_count("imaps", "starttls")), -1) << "no STARTTLS on 993";
    const auto transcript = http("GET", agent.url("/results?target=imaps&probe=imap")).body;
    EXPECT_NE(transcript.find("SELECT"), std::string::npos) << transcript;
    EXPECT_EQ(transcript.find(read_file(env_.at("MAILSTACK_PASSWORD_FILE")).substr(0, 6)),
              std::string::npos)
        << "the password never reaches the transcript";
}

TEST_F(ImapIntegration, AWrongPasswordIsAuthRejected) {
    const fs::path wrong = dir_ / "wrong.password";
    std::ofstream(wrong) << "not-the-password\n";
    std::string config =
        header() + imap_target("badlogin", port("MAILSTACK_IMAPS_PORT"), "implicit", "", trusted());
    config = std::regex_replace(config, std::regex("password_file = \"[^\"]*\""),
                                "password_file = \"" + wrong.string() + "\"");
    AgentProcess agent(dir_, config);
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(each_reported({"badlogin"}, "imap"), 15s);
    ASSERT_EQ(value_of(text, success_series("badlogin", "imap")), 0) << text << agent.log();
    EXPECT_GE(value_of(text, imap_failures("badlogin", "auth_rejected")), 1) << text;
    const auto transcript = http("GET", agent.url("/results?target=badlogin&probe=imap")).body;
    EXPECT_NE(transcript.find("AUTHENTICATIONFAILED"), std::string::npos) << transcript;
}

TEST_F(ImapIntegration, AnUntrustedCertificateAClosedPortAndAMissingMailboxEachHaveTheirReason) {
    AgentProcess agent(dir_,
                       header() +
                           // No ca_file: the stack's private CA is not in the system store.
                           imap_target("untrusted", port("MAILSTACK_IMAPS_PORT"), "implicit") +
                           imap_target("closed", "1", "implicit", "", trusted()) +
                           imap_target("nomailbox", port("MAILSTACK_IMAP_PORT"), "starttls",
                                       "mailbox = \"No such folder\"\n", trusted()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text =
        agent.wait_for(each_reported({"untrusted", "closed", "nomailbox"}, "imap"), 15s);
    EXPECT_GE(value_of(text, imap_failures("untrusted", "tls_cert_untrusted")), 1) << text;
    // The certificate's expiry is known even though it could not be verified.
    EXPECT_GT(value_of(text, R"(mailcanary_tls_cert_expiry_timestamp_seconds{probe="imap",)"
                             R"(target="untrusted"})"),
              0)
        << text;
    EXPECT_GE(value_of(text, imap_failures("closed", "connect_refused")), 1) << text;
    EXPECT_GE(value_of(text, imap_failures("nomailbox", "select_rejected")), 1) << text;
    EXPECT_EQ(value_of(text, "mailcanary_imap_mailbox_messages{target=\"nomailbox\"}"), -1)
        << "no count without a successful SELECT";
}

}  // namespace
}  // namespace mailcanary::test
