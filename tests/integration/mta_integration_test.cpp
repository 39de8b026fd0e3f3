// The agent against real mail servers beside Postfix: Exim 4 and OpenSMTPD, which
// tests/stack/mtas.sh runs in the mail stack's directory, delivering over LMTP to its Dovecot.
// Each case is a target run once with --probe; its outcome line and transcript, what a user sees,
// are what is checked. One table serves both servers: what differs between them (TLS, AUTH, the
// form of the queue id, what their logs say on accepting a message) is data in `Mta`.
#include <cctype>
#include <regex>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

struct Mta {
    std::string name;               // in the test names
    std::string prefix;             // of its keys in mtas.env
    std::string smtp_tls;           // what its SMTP port (<prefix>SMTP_PORT) offers
    std::string starttls_port_key;  // its port with STARTTLS
    std::string tls12_port_key;     // a port whose TLS stops at 1.2; "" when there is none
    std::string tls_outcome;        // of every TLS handshake, whatever the verification
    std::vector<std::string> auth_mechanisms;  // what its EHLO offers, in its order
    std::string accepted_log_line;             // in its log, once per message it accepts
    std::string queue_id_reply;  // its reply to the final dot, the queue id as group 1
};

void PrintTo(const Mta& mta, std::ostream* out) { *out << mta.name; }

const Mta kExim{"exim",
                "EXIM_",
                "starttls",
                "SMTP_PORT",
                "TLS12_PORT",
                "success",
                {"PLAIN", "LOGIN", "CRAM-MD5"},
                // Not " <= " alone: bounces Exim makes itself are logged as "<= <>".
                " <= canary@mailcanary.test ",
                R"(S: 250 OK id=(\S+))"};

// OpenSMTPD 6.8 fails every TLS handshake with Debian 12's OpenSSL 3 (an alert "internal error"),
// and offers AUTH only once TLS is up: so no AUTH at all.
const Mta kOpenSmtpd{"opensmtpd",
                     "OPENSMTPD_",
                     "none",
                     "STARTTLS_PORT",
                     "",
                     "failed: tls_handshake",
                     {},
                     " smtp message msgid=",
                     R"(S: 250 2\.0\.0 ([0-9a-f]+) Message accepted for delivery)"};

// One target: the probe kind it runs, and what a run must print.
struct Case {
    std::string name;
    std::string kind;
    std::string toml;
    std::string expected;  // "success" or "failed: <reason>"
    std::vector<std::string> transcript_has;
};

// What --probe printed about the case's run after "<target>/<kind>: " (log lines may come
// first): "success" or "failed: <reason> (<detail>)", then ", queued as <id>" if there is one.
std::string outcome_line(const std::string& output, const Case& each) {
    const std::string start = each.name + "/" + each.kind + ": ";
    const auto at = output.starts_with(start) ? 0 : output.find("\n" + start);
    if (at == std::string::npos) return "(no outcome line)";
    const auto from = output.find(start, at) + start.size();
    return output.substr(from, output.find('\n', from) - from);
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

class MtaIntegration : public AgentIntegration, public testing::WithParamInterface<Mta> {
  protected:
    MtaIntegration() { env_.merge(stack_env("mtas.env")); }

    const Mta& mta() const { return GetParam(); }
    std::string mta_port(const std::string& key) const { return env_.at(mta().prefix + key); }
    std::string user() const { return env_.at("MAILSTACK_USER"); }

    // A case on the server's port `port_key`; `extra` goes inside the target after its probes.
    Case make_case(const std::string& name, const std::string& kind, const std::string& port_key,
                   const std::string& tls, const std::string& extra, const std::string& expected,
                   std::vector<std::string> transcript_has = {}) const {
        return {name, kind,
                target(name, mta_port(port_key), tls, "probes = [\"" + kind + "\"]\n" + extra),
                expected, std::move(transcript_has)};
    }
    // On the server's SMTP port, with TLS (and the stack's CA) if it offers any there.
    Case on_smtp_port(const std::string& name, const std::string& kind, const std::string& extra,
                      const std::string& expected,
                      std::vector<std::string> transcript_has = {}) const {
        const std::string verification = mta().smtp_tls == "none" ? "" : tls_options();
        return make_case(name, kind, "SMTP_PORT", mta().smtp_tls, verification + extra, expected,
                         std::move(transcript_has));
    }
    static std::string message(const std::string& from, const std::vector<std::string>& to) {
        std::string list;
        for (const auto& address : to) list += (list.empty() ? "\"" : ", \"") + address + "\"";
        return "[targets.message]\nfrom = \"" + from + "\"\nto = [" + list + "]\n";
    }
    std::string auth_table(const std::string& more) const {
        return "[targets.auth]\nusername = \"" + user() + "\"\n" + more;
    }
    std::string right_password() const {
        return "password_file = \"" + env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n";
    }

    // One configuration with every case's target.
    void write_config(const std::vector<Case>& cases) const {
        std::string config = "[defaults]\ninterval = \"30s\"\ntimeout = \"5s\"\nhelo = \"" +
                             mta().name + ".mailcanary.test\"\n\n";
        for (const auto& each : cases) config += each.toml;
        std::ofstream(dir_ / "agent.toml") << config;
    }

    // Runs the case's target once (it must be in the configuration) and checks what it printed,
    // which it returns.
    std::string expect_outcome(const Case& each) const {
        SCOPED_TRACE(mta().name + " " + each.name);
        const test::Run run =
            run_binary({"--config.file=" + (dir_ / "agent.toml").string(), "--probe=" + each.name},
                       dir_ / (each.name + ".out"));
        EXPECT_TRUE(outcome_line(run.output, each).starts_with(each.expected))
            << "expected " << each.expected << "\n"
            << run.output;
        EXPECT_EQ(run.exit_code, each.expected == "success" ? 0 : 1) << run.output;
        for (const auto& needle : each.transcript_has) {
            EXPECT_NE(run.output.find(needle), std::string::npos) << "no \"" << needle << "\" in\n"
                                                                  << run.output;
        }
        return run.output;
    }

    void expect_outcomes(const std::vector<Case>& cases) const {
        write_config(cases);
        for (const auto& each : cases) expect_outcome(each);
    }

    // Messages the server has accepted since it started, as its log counts them.
    int accepted_messages() const {
        const std::string log = read_file(env_.at(mta().prefix + "LOG"));
        int count = 0;
        for (auto at = log.find(mta().accepted_log_line); at != std::string::npos;
             at = log.find(mta().accepted_log_line, at + 1)) {
            ++count;
        }
        return count;
    }

    std::vector<Case> auth_cases() const {
        const auto& offered = mta().auth_mechanisms;
        if (offered.empty()) {
            // Offered after STARTTLS at most, and the plain port has none.
            return {on_smtp_port("auth-not-offered", "auth",
                                 "allow_plaintext_auth = true\n" + auth_table(right_password()),
                                 "failed: auth_unavailable")};
        }
        std::vector<Case> cases;
        std::string listed;
        for (const auto& mechanism : offered) {
            listed += (listed.empty() ? "" : " ") + mechanism;
            cases.push_back(on_smtp_port(
                "auth-" + lower(mechanism), "auth",
                auth_table("mechanism = \"" + lower(mechanism) + "\"\n" + right_password()),
                "success", {"C: AUTH " + mechanism, "S: 235"}));
        }
        // "auto" takes the strongest mechanism offered that fits a password.
        const auto offers = [&](const std::string& mechanism) {
            return std::find(offered.begin(), offered.end(), mechanism) != offered.end();
        };
        const std::string strongest = offers("CRAM-MD5") ? "CRAM-MD5"
                                      : offers("PLAIN")  ? "PLAIN"
                                                         : "LOGIN";
        cases.push_back(on_smtp_port("auth-auto", "auth", auth_table(right_password()), "success",
                                     {"S: 250-AUTH " + listed, "C: AUTH " + strongest}));
        std::ofstream(dir_ / "wrong.password") << "not-the-password\n";
        cases.push_back(on_smtp_port(
            "auth-wrong-password", "auth",
            auth_table("password_file = \"" + (dir_ / "wrong.password").string() + "\"\n"),
            "failed: auth_rejected", {"S: 535"}));
        cases.push_back(make_case("auth-implicit-tls", "auth", "SMTPS_PORT", "implicit",
                                  tls_options() + auth_table(right_password()), "success",
                                  {"S: 235"}));
        return cases;
    }
};

// Every SMTP probe kind against the server's policy: what it accepts, and each way it refuses.
TEST_P(MtaIntegration, EveryProbeKindMeetsTheServersPolicy) {
    const std::string sender = "canary@mailcanary.test";
    std::vector<Case> cases{
        on_smtp_port("connect", "connect", "", "success", {"S: 221"}),
        on_smtp_port("accept", "accept", message(sender, {user()}), "success",
                     {"S: 354", "C: (message"}),
        on_smtp_port("refused-recipient", "accept",
                     message(sender, {env_.at("MAILSTACK_REFUSED_RCPT")}), "failed: rcpt_rejected",
                     {"S: 550"}),
        on_smtp_port("refused-sender", "accept", message(env_.at("MTAS_REFUSED_SENDER"), {user()}),
                     "failed: mail_rejected", {"S: 550 5.7.1 Sender refused"}),
        on_smtp_port("tempfail", "accept", message(sender, {env_.at("MTAS_TEMPFAIL_RCPT")}),
                     "failed: rcpt_tempfail", {"S: 45"}),
        on_smtp_port("rejected-after-data", "accept",
                     message(env_.at("MTAS_REJECTED_AFTER_DATA_SENDER"), {user()}),
                     "failed: message_rejected",
                     {"C: (message", "5.7.1 Message rejected by content policy"}),
        // Delivered over LMTP to Dovecot, found there over IMAP, then deleted.
        on_smtp_port("roundtrip", "roundtrip",
                     roundtrip_tables(host(), port("MAILSTACK_IMAPS_PORT"), "implicit",
                                      "timeout = \"10s\"\n"),
                     "success"),
    };
    for (auto& auth : auth_cases()) cases.push_back(std::move(auth));
    expect_outcomes(cases);
}

// STARTTLS and implicit TLS, verified against the stack's CA and not verified at all. OpenSMTPD
// aborts each handshake itself (alert 80, "internal error"): a failed handshake whatever the
// verification settings, never a certificate problem, as its certificate is the stack's own.
TEST_P(MtaIntegration, TlsHandshakesMeetTheServersTls) {
    const std::string unverified = "[targets.tls_options]\ninsecure_skip_verify = true\n";
    std::vector<Case> cases;
    for (const auto& [port_key, tls] :
         {std::pair<std::string, std::string>{mta().starttls_port_key, "starttls"},
          {"SMTPS_PORT", "implicit"}}) {
        cases.push_back(make_case(tls + "-verified", "connect", port_key, tls, tls_options(),
                                  mta().tls_outcome));
        cases.push_back(make_case(tls + "-unverified", "connect", port_key, tls, unverified,
                                  mta().tls_outcome));
    }
    if (!mta().tls12_port_key.empty()) {
        cases.push_back(make_case("tls12-only", "connect", mta().tls12_port_key, "starttls",
                                  tls_options(), "success", {"TLS established: TLSv1.2"}));
        cases.push_back(make_case("tls12-only-for-min-1.3", "connect", mta().tls12_port_key,
                                  "starttls", tls_options("min_version = \"1.3\"\n"),
                                  "failed: tls_handshake"));
    }
    expect_outcomes(cases);
}

// The id the server gave the message is in the outcome, as with Postfix: it is what to look for
// in the server's logs.
TEST_P(MtaIntegration, TheQueueIdOfTheFinalReplyIsReported) {
    const Case accept =
        on_smtp_port("accept", "accept", message("canary@mailcanary.test", {user()}), "success");
    write_config({accept});
    const std::string output = expect_outcome(accept);
    std::smatch reply;
    ASSERT_TRUE(std::regex_search(output, reply, std::regex(mta().queue_id_reply))) << output;
    EXPECT_NE(outcome_line(output, accept).find(", queued as " + reply[1].str()), std::string::npos)
        << output;
}

// A run that fails leaves nothing behind: with one recipient refused, the message goes to none
// (Exim offers PIPELINING, and gets MAIL and both RCPTs at once; DATA must wait for their replies).
TEST_P(MtaIntegration, ARunWithARefusedRecipientDeliversNothing) {
    const std::string sender = "canary@mailcanary.test";
    const std::vector<Case> cases{
        on_smtp_port("one-refused", "accept",
                     message(sender, {user(), env_.at("MAILSTACK_REFUSED_RCPT")}),
                     "failed: rcpt_rejected", {"S: 550"}),
        on_smtp_port("all-accepted", "accept", message(sender, {user()}), "success"),
    };
    write_config(cases);
    const int before = accepted_messages();
    expect_outcome(cases.front());
    EXPECT_EQ(accepted_messages(), before) << "the server accepted the failed run's message";
    // The log does count what is accepted: the run without a refusal adds exactly one.
    expect_outcome(cases.back());
    const auto deadline = Clock::now() + 5s;
    while (accepted_messages() < before + 1 && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(accepted_messages() - before, 1);
}

INSTANTIATE_TEST_SUITE_P(Mtas, MtaIntegration, testing::Values(kExim, kOpenSmtpd),
                         [](const testing::TestParamInfo<Mta>& param) { return param.param.name; });

}  // namespace
}  // namespace mailcanary::test
