// `mailcanary check` as an operator runs it, against the real Postfix and Dovecot: a success and
// the failures an operator meets most (nothing listening, a certificate not trusted or for another
// name, a login refused), each as text and as JSON; usage errors; secrets kept off the command
// line and out of the transcript.
#include <cstdlib>

#include "integration/harness.hpp"
#include "protocols/sasl.hpp"

namespace mailcanary::test {
namespace {

class CheckCommand : public AgentIntegration {
  protected:
    test::Run check(std::vector<std::string> args) {
        args.insert(args.begin(), "check");
        return run_binary(std::move(args), dir_ / "check.out");
    }
    std::string server(const char* port_key) const {
        return env_.at("MAILSTACK_HOST") + ":" + env_.at(port_key);
    }
    std::string ca_file() const { return "--ca-file=" + env_.at("MAILSTACK_CA_FILE"); }
    std::string server_name() const {
        return "--server-name=" + env_.at("MAILSTACK_TLS_SERVER_NAME");
    }
    std::string password_file() const {
        return "--password-file=" + env_.at("MAILSTACK_PASSWORD_FILE");
    }
    std::string username() const { return "--username=" + env_.at("MAILSTACK_USER"); }
    std::string password() const {
        std::string text = read_file(env_.at("MAILSTACK_PASSWORD_FILE"));
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        return text;
    }

    // Facts of the JSON document `json` as Python's json module reads it (so it is valid JSON):
    // "success reason phase,phase,... certificate-subject tls-version", one probe per line.
    std::string facts(const std::string& json) {
        const fs::path document = dir_ / "check.json";
        std::ofstream(document) << json;
        const fs::path script = dir_ / "facts.py";
        std::ofstream(script) << R"(import json, sys
doc = json.load(open(sys.argv[1]))
for p in doc["probes"]:
    cert = p["certificate"] or {}
    tls = p["tls"] or {}
    print(str(p["success"]).lower(), p["reason"], ",".join(s["phase"] for s in p["phases"]),
          cert.get("subject"), tls.get("version"), "|".join(s["reply"] for s in p["phases"]))
)";
        const fs::path out = dir_ / "facts.out";
        const std::string command =
            "python3 " + script.string() + " " + document.string() + " >" + out.string() + " 2>&1";
        EXPECT_EQ(std::system(command.c_str()), 0) << read_file(out) << json;
        return read_file(out);
    }
};

TEST_F(CheckCommand, SubmissionWithLoginSucceeds) {
    const std::vector<std::string> args{server("MAILSTACK_SUBMISSION_PORT"),
                                        "--probes=connect,auth",
                                        username(),
                                        password_file(),
                                        ca_file(),
                                        server_name()};
    const test::Run text = check(args);
    EXPECT_EQ(text.exit_code, 0) << text.output;
    for (const char* part :
         {"connect  success in", "auth  success in", "  tls_handshake ", "  ehlo ",
          "220 mail.example.test ESMTP", "235 2.7.0 Authentication successful",
          "certificate   CN=mail.example.test", "    issuer      CN=mailcanary test CA",
          "names       mail.example.test", "tls           TLSv1.3", "outcome       success"}) {
        EXPECT_NE(text.output.find(part), std::string::npos) << part << "\n" << text.output;
    }
    EXPECT_EQ(text.output.find("transcript"), std::string::npos) << "only with -v";

    auto json_args = args;
    json_args.push_back("--output=json");
    const test::Run json = check(json_args);
    EXPECT_EQ(json.exit_code, 0) << json.output;
    const std::string facts_text = facts(json.output);
    EXPECT_NE(facts_text.find("true None resolve,connect,banner,ehlo,starttls,tls_handshake,ehlo,"
                              "quit CN=mail.example.test TLSv1.3"),
              std::string::npos)
        << facts_text;
    EXPECT_NE(facts_text.find("true None resolve,connect,banner,ehlo,starttls,tls_handshake,ehlo,"
                              "auth,quit CN=mail.example.test TLSv1.3"),
              std::string::npos)
        << facts_text;
    EXPECT_NE(facts_text.find("|235 2.7.0 Authentication successful|221 2.0.0 Bye"),
              std::string::npos)
        << facts_text;
}

TEST_F(CheckCommand, NothingListeningIsConnectRefused) {
    const test::Run text = check({"127.0.0.1:1", "--tls=none"});
    EXPECT_EQ(text.exit_code, 1) << text.output;
    EXPECT_NE(text.output.find("connect  failed: connect_refused"), std::string::npos)
        << text.output;
    EXPECT_NE(text.output.find("reason        Connection refused"), std::string::npos)
        << text.output;
    EXPECT_EQ(text.output.find("certificate"), std::string::npos) << text.output;

    const test::Run json = check({"127.0.0.1:1", "--tls=none", "--output=json"});
    EXPECT_EQ(json.exit_code, 1) << json.output;
    EXPECT_EQ(facts(json.output),
              "false connect_refused resolve,connect None None "
              "|connect to 127.0.0.1:1 failed: Connection refused\n");
}

// -4 and -6 keep to one address family: an address of the other family is never tried.
TEST_F(CheckCommand, AddressFamilyFlagsKeepToTheirFamily) {
    const test::Run v6_only = check({server("MAILSTACK_SMTP_PORT"), "-6", "--tls=none"});
    EXPECT_EQ(v6_only.exit_code, 1) << v6_only.output;
    EXPECT_NE(v6_only.output.find("reason        resolving 127.0.0.1: no IPv6 address"),
              std::string::npos)
        << v6_only.output;
    EXPECT_EQ(v6_only.output.find("  connect "), std::string::npos) << v6_only.output;
    const test::Run v4_only = check({server("MAILSTACK_SMTP_PORT"), "-4", "--tls=none"});
    EXPECT_EQ(v4_only.exit_code, 0) << v4_only.output;
}

// The certificate's facts are shown though verification refused it: what the server presented
// is what an operator needs to see then.
TEST_F(CheckCommand, UntrustedOrWrongNameCertificateIsShownAnyway) {
    const test::Run untrusted = check({server("MAILSTACK_SMTP_PORT")});  // the system's trust store
    EXPECT_EQ(untrusted.exit_code, 1) << untrusted.output;
    for (const char* part :
         {"connect  failed: tls_cert_untrusted", "certificate   CN=mail.example.test",
          "    issuer      CN=mailcanary test CA", "tls           TLSv1.3",
          "reason        certificate: unable to get local issuer certificate"}) {
        EXPECT_NE(untrusted.output.find(part), std::string::npos) << part << "\n"
                                                                  << untrusted.output;
    }
    const test::Run wrong_name =
        check({server("MAILSTACK_SMTP_PORT"), ca_file(), "--server-name=other.example.test"});
    EXPECT_EQ(wrong_name.exit_code, 1) << wrong_name.output;
    EXPECT_NE(wrong_name.output.find("connect  failed: tls_cert_hostname"), std::string::npos)
        << wrong_name.output;
    EXPECT_NE(wrong_name.output.find("names       mail.example.test, localhost"), std::string::npos)
        << wrong_name.output;

    const test::Run json = check({server("MAILSTACK_SMTP_PORT"), "--output=json"});
    EXPECT_EQ(json.exit_code, 1) << json.output;
    EXPECT_EQ(facts(json.output)
                  .find("false tls_cert_untrusted resolve,connect,banner,ehlo,"
                        "starttls,tls_handshake CN=mail.example.test TLSv1.3 "),
              0u)
        << json.output;
}

TEST_F(CheckCommand, RefusedLoginIsAuthRejectedWithTheServersReply) {
    const fs::path wrong = dir_ / "wrong.password";
    std::ofstream(wrong) << "not-the-password\n";
    fs::permissions(wrong, fs::perms::owner_read);
    const std::vector<std::string> args{
        server("MAILSTACK_SUBMISSION_PORT"), "--probes=auth", username(),
        "--password-file=" + wrong.string(), ca_file(),       server_name()};
    const test::Run text = check(args);
    EXPECT_EQ(text.exit_code, 1) << text.output;
    EXPECT_NE(text.output.find("auth  failed: auth_rejected"), std::string::npos) << text.output;
    EXPECT_NE(text.output.find("reason        535 5.7.8"), std::string::npos) << text.output;

    auto json_args = args;
    json_args.push_back("--output=json");
    const test::Run json = check(json_args);
    EXPECT_EQ(json.exit_code, 1) << json.output;
    const std::string facts_text = facts(json.output);
    EXPECT_EQ(facts_text.find("false auth_rejected "), 0u) << facts_text;
    EXPECT_NE(facts_text.find("|535 5.7.8 Error: authentication failed"), std::string::npos)
        << facts_text;
}

TEST_F(CheckCommand, BadUsageExitsTwoWithTheReason) {
    test::Run run = check({});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("mailcanary check: which server?"), std::string::npos) << run.output;
    run = check({server("MAILSTACK_SMTP_PORT"), "--probes=auth"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("give --username"), std::string::npos) << run.output;
    run = check({server("MAILSTACK_SMTP_PORT"), "--tls=tls"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("--tls: \"tls\" is not one of"), std::string::npos) << run.output;
    run = check({"--help"});
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_NE(run.output.find("Usage: mailcanary check HOST[:PORT]"), std::string::npos);
}

TEST_F(CheckCommand, APasswordOnTheCommandLineIsRefusedAndNeverEchoed) {
    const test::Run run = check({server("MAILSTACK_SUBMISSION_PORT"), "--probes=auth", username(),
                                 "--password=" + password()});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.output.find("--password is refused"), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find(password()), std::string::npos) << "the secret was echoed";
}

// -v shows the transcript: every command, but the secret neither in clear nor as the base64 of
// AUTH PLAIN. From the environment here, as a script would give it.
TEST_F(CheckCommand, VerboseTranscriptIsRedacted) {
    ASSERT_EQ(setenv("MAILCANARY_CHECK_TEST_PASSWORD", password().c_str(), 1), 0);
    const std::vector<std::string> args{server("MAILSTACK_SUBMISSION_PORT"),
                                        "--probes=auth",
                                        username(),
                                        "--password-env=MAILCANARY_CHECK_TEST_PASSWORD",
                                        ca_file(),
                                        server_name(),
                                        "-v"};
    const test::Run text = check(args);
    auto json_args = args;
    json_args.push_back("--output=json");
    const test::Run json = check(json_args);
    unsetenv("MAILCANARY_CHECK_TEST_PASSWORD");
    EXPECT_EQ(text.exit_code, 0) << text.output;
    EXPECT_EQ(json.exit_code, 0) << json.output;
    const std::string plain = std::string(1, '\0') + env_.at("MAILSTACK_USER") + '\0' + password();
    for (const test::Run* run : {&text, &json}) {
        EXPECT_NE(run->output.find("AUTH PLAIN <redacted>"), std::string::npos) << run->output;
        EXPECT_NE(run->output.find("235 2.7.0"), std::string::npos) << run->output;
        EXPECT_EQ(run->output.find(password()), std::string::npos) << run->output;
        EXPECT_EQ(run->output.find(sasl::base64_encode(plain)), std::string::npos) << run->output;
    }
    EXPECT_NE(text.output.find("  transcript:\n"), std::string::npos) << text.output;
    EXPECT_NE(json.output.find(R"("direction":"client","text":"AUTH PLAIN <redacted>")"),
              std::string::npos)
        << json.output;
}

}  // namespace
}  // namespace mailcanary::test
