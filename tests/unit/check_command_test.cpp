#include "agent/check_command.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/config.hpp"
#include "agent/waterfall_render.hpp"
#include "probes/imap_probe.hpp"
#include "probes/registry.hpp"
#include "support/files.hpp"

namespace mailcanary {
namespace {

using namespace std::chrono_literals;

CheckParse parse(std::vector<const char*> args) { return parse_check_args(args); }

TargetConfig target_of(std::vector<const char*> args) {
    const auto parsed = parse(std::move(args));
    EXPECT_TRUE(parsed.request) << parsed.error;
    return parsed.request ? parsed.request->target : TargetConfig{};
}

TEST(CheckCommand, DefaultsAreTheConnectProbeOnPort25WithStarttls) {
    const auto parsed = parse({"mx.example.com"});
    ASSERT_TRUE(parsed.request) << parsed.error;
    const TargetConfig& target = parsed.request->target;
    EXPECT_EQ(target.name, "mx.example.com:25");
    EXPECT_EQ(target.host, "mx.example.com");
    EXPECT_EQ(target.port, 25);
    EXPECT_EQ(target.tls, TlsMode::starttls);
    EXPECT_EQ(target.probes, std::vector<std::string>{"connect"});
    EXPECT_EQ(target.timeout, kDefaultTimeout);
    EXPECT_EQ(target.helo, machine_host_name());
    EXPECT_EQ(target.ip_family, IpFamily::any);
    EXPECT_FALSE(target.auth);
    EXPECT_FALSE(target.message);
    EXPECT_FALSE(parsed.request->verbose);
    EXPECT_EQ(parsed.request->output, CheckOutput::text);
}

TEST(CheckCommand, TheTlsModeFollowsThePortAndThePortTheTlsMode) {
    EXPECT_EQ(target_of({"mx:465"}).tls, TlsMode::implicit);
    EXPECT_EQ(target_of({"mx:587"}).tls, TlsMode::starttls);
    EXPECT_EQ(target_of({"mx:2525"}).tls, TlsMode::starttls);
    EXPECT_EQ(target_of({"mx:465", "--tls=none"}).tls, TlsMode::none);
    EXPECT_EQ(target_of({"mx", "--tls", "implicit"}).port, 465);
    EXPECT_EQ(target_of({"mx", "--tls=none"}).port, 25);
    // IMAP alone: the server named is the IMAP server.
    const char* login[] = {"--username=u", "--password-env=PATH"};
    EXPECT_EQ(target_of({"mx", "--probes=imap", login[0], login[1]}).port, 993);
    EXPECT_EQ(target_of({"mx", "--probes=imap", login[0], login[1]}).tls, TlsMode::implicit);
    EXPECT_EQ(target_of({"mx:143", "--probes=imap", login[0], login[1]}).tls, TlsMode::starttls);
    EXPECT_EQ(target_of({"mx", "--probes=imap", "--tls=starttls", login[0], login[1]}).port, 143);
}

TEST(CheckCommand, Ipv6AddressesWithAndWithoutBrackets) {
    auto target = target_of({"[2001:db8::25]:2525"});
    EXPECT_EQ(target.host, "2001:db8::25");
    EXPECT_EQ(target.port, 2525);
    EXPECT_EQ(target.name, "[2001:db8::25]:2525");
    target = target_of({"::1"});
    EXPECT_EQ(target.host, "::1");
    EXPECT_EQ(target.port, 25);
    EXPECT_EQ(target_of({"mx", "-4"}).ip_family, IpFamily::v4);
    EXPECT_EQ(target_of({"mx", "-6"}).ip_family, IpFamily::v6);
}

TEST(CheckCommand, EveryFlagBecomesTheTargetTheLoaderWouldBuild) {
    test::TempDir dir;
    const auto password = dir.path() / "password";
    std::ofstream(password) << "secret\n";
    std::filesystem::permissions(password, std::filesystem::perms::owner_read);
    const auto ca = dir.path() / "ca.pem";
    std::ofstream(ca) << "-----BEGIN CERTIFICATE-----\n";
    const std::string password_flag = "--password-file=" + password.string();
    const std::string ca_flag = "--ca-file=" + ca.string();
    const auto parsed =
        parse({"smtp.example.com:587", "--probes=connect,auth,accept,imap", "--username",
               "probe@example.com", password_flag.c_str(), "--from=probe@example.com",
               "--to=a@example.com", "--to=b@example.com", "--helo=checker.example.com",
               ca_flag.c_str(), "--server-name=mx.example.com", "--insecure-skip-verify",
               "--timeout=1m30s", "-v", "--output=json"});
    ASSERT_TRUE(parsed.request) << parsed.error;
    const TargetConfig& target = parsed.request->target;
    EXPECT_EQ(target.probes, (std::vector<std::string>{"connect", "auth", "accept", "imap"}));
    ASSERT_TRUE(target.auth);
    EXPECT_EQ(target.auth->username, "probe@example.com");
    EXPECT_EQ(target.auth->password_file, password.string());
    ASSERT_TRUE(target.message);
    EXPECT_EQ(target.message->from, "probe@example.com");
    EXPECT_EQ(target.message->to, (std::vector<std::string>{"a@example.com", "b@example.com"}));
    EXPECT_EQ(target.message->mode, AcceptMode::data);
    EXPECT_EQ(target.helo, "checker.example.com");
    EXPECT_EQ(target.tls_options.ca_file, ca.string());
    EXPECT_EQ(target.tls_options.server_name, "mx.example.com");
    EXPECT_TRUE(target.tls_options.insecure_skip_verify);
    EXPECT_EQ(target.timeout, 90s);
    EXPECT_TRUE(parsed.request->verbose);
    EXPECT_EQ(parsed.request->output, CheckOutput::json);
    // Beside the SMTP probes, imap goes to the same host's IMAPS port with the same login.
    const auto* imap = target.probe_options.find<ImapOptions>("imap");
    ASSERT_NE(imap, nullptr);
    EXPECT_EQ(imap->host, "smtp.example.com");
    EXPECT_EQ(imap->port, 993);
    EXPECT_EQ(imap->tls, TlsMode::implicit);
    EXPECT_EQ(imap->auth, *target.auth);
    EXPECT_EQ(imap->tls_options, target.tls_options);
}

TEST(CheckCommand, RelativeFilesAreMadeAbsolute) {
    const auto parsed =
        parse({"mx", "--probes=auth", "--username=u", "--token-file=/etc/hostname"});
    ASSERT_TRUE(parsed.request) << parsed.error;
    EXPECT_EQ(parsed.request->target.auth->token_file, "/etc/hostname");
    const auto relative = parse({"mx", "--ca-file=does-not-exist.pem"});
    EXPECT_NE(relative.error.find(std::filesystem::current_path().string()), std::string::npos)
        << relative.error;
}

TEST(CheckCommand, HelpIsNotAnError) {
    const auto parsed = parse({"--help"});
    EXPECT_TRUE(parsed.show_help);
    EXPECT_TRUE(parsed.error.empty());
    EXPECT_NE(check_usage().find("--password-env"), std::string::npos);
}

struct BadCheck {
    std::vector<const char*> args;
    const char* error_part;
};

void PrintTo(const BadCheck& bad, std::ostream* out) {
    for (const char* arg : bad.args) *out << arg << ' ';
}

class CheckCommandErrors : public testing::TestWithParam<BadCheck> {};

TEST_P(CheckCommandErrors, AreClear) {
    const auto result = parse(GetParam().args);
    EXPECT_FALSE(result.request);
    EXPECT_FALSE(result.show_help);
    EXPECT_NE(result.error.find(GetParam().error_part), std::string::npos) << result.error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CheckCommandErrors,
    testing::Values(
        BadCheck{{"mx", "--password=hunter2"}, "--password is refused: a secret on the command"},
        BadCheck{{"mx", "--password", "hunter2"}, "visible to every user of this machine"},
        BadCheck{{"mx", "--token=abc"}, "--token is refused"},
        BadCheck{{}, "which server? mailcanary check HOST[:PORT]"},
        BadCheck{{"--tls=none"}, "which server?"},
        BadCheck{{"mx", "other"}, "one server at a time"},
        BadCheck{{"mx", "--bogus"}, "unknown flag \"--bogus\""}, BadCheck{{"mx:0"}, "port \"0\""},
        BadCheck{{"mx:smtp"}, "port \"smtp\""}, BadCheck{{"[::1"}, "no closing ]"},
        BadCheck{{"bad host"}, "host \"bad host\""},
        BadCheck{{"mx", "--tls=ssl"}, "--tls: \"ssl\" is not one of none, starttls, implicit"},
        BadCheck{{"mx", "--probes=roundtrip"}, "\"roundtrip\" is not one of connect, auth"},
        BadCheck{{"mx", "--probes=connect,connect"}, "\"connect\" is listed twice"},
        BadCheck{{"mx", "--probes="}, "--probes needs a value"},
        BadCheck{{"mx", "--probes=auth"}, "give --username"},
        BadCheck{{"mx", "--probes=imap", "--username=u"}, "--username needs its secret"},
        BadCheck{{"mx", "--password-env=PATH"}, "needs --username"},
        BadCheck{{"mx", "--username=u", "--password-env=PATH", "--token-file=/etc/hostname"},
                 "give one of --password-env, --password-file, --token-file"},
        BadCheck{{"mx", "--username=u", "--password-env=MAILCANARY_SURELY_UNSET"},
                 "MAILCANARY_SURELY_UNSET"},
        BadCheck{{"mx", "--username=u", "--password-file=/nonexistent/pw"}, "--password-file"},
        BadCheck{{"mx", "--probes=accept", "--from=a@example.com"}, "give --from and --to"},
        BadCheck{{"mx", "--to=a@example.com"}, "--from and --to are for the accept probe"},
        BadCheck{{"mx", "--probes=accept", "--from=not an address", "--to=a@b"}, "--from"},
        BadCheck{{"mx", "--timeout=0s"}, "--timeout: \"0s\""},
        BadCheck{{"mx", "--timeout=5"}, "--timeout: \"5\""},
        BadCheck{{"mx", "--output=xml"}, "--output: \"xml\" is not one of text, json"},
        BadCheck{{"mx", "--insecure-skip-verify=yes"}, "takes no value"},
        BadCheck{{"mx", "--ca-file=/nonexistent/ca.pem"}, "--ca-file"},
        BadCheck{{"mx", "--helo"}, "--helo needs a value"}));

// A run of the connect probe as the engine records it: spans and a transcript on one clock.
OneRun made_up_run() {
    const auto started = std::chrono::steady_clock::now();
    OneRun run{find_probe("connect"), {}, {}, Transcript(started), started, 10ms};
    run.metrics.phase_spans = {{Phase::connect, started, 1ms},
                               {Phase::banner, started + 1ms, 2ms},
                               {Phase::ehlo, started + 3ms, 2ms},
                               {Phase::starttls, started + 5ms, 1ms},
                               {Phase::tls_handshake, started + 6ms, 4ms}};
    // Each reply is taken in just before the next phase starts, as the engine does.
    using D = Transcript::Direction;
    run.transcript.add(D::note, "connected to 192.0.2.1:25", started + 900us);
    run.transcript.add(D::server, "220 mx.example.com ESMTP", started + 2900us);
    run.transcript.add(D::client, "EHLO checker", started + 2950us);
    run.transcript.add(D::server, "250-mx.example.com", started + 4900us);
    run.transcript.add(D::server, "250-PIPELINING", started + 4900us);
    run.transcript.add(D::server, "250 STARTTLS", started + 4900us);
    run.transcript.add(D::client, "AUTH PLAIN <redacted>", started + 4950us);
    run.transcript.add(D::server, "220 Ready", started + 5500us);
    run.metrics.tls_version = "TLSv1.3";
    run.metrics.tls_cipher = "TLS_AES_128_GCM_SHA256";
    run.metrics.certificate = CertificateFacts{.subject = "CN=other.example.com",
                                               .issuer = "CN=Some \"CA\"",
                                               .alt_names = {"other.example.com", "192.0.2.9"},
                                               .not_before = std::chrono::system_clock::now() - 24h,
                                               .not_after = std::chrono::system_clock::now() + 49h};
    run.outcome =
        Outcome::failed(FailureReason::tls_cert_hostname, "certificate: hostname mismatch");
    return run;
}

TEST(WaterfallRender, EachPhaseShowsTheReplyThatEndedIt) {
    const OneRun run = made_up_run();
    const auto& spans = run.metrics.phase_spans;
    const auto end_of = [&](std::size_t index) {
        return index + 1 < spans.size() ? spans[index + 1].started : run.started + run.elapsed;
    };
    EXPECT_EQ(reply_between(run, spans[0].started, end_of(0)), "connected to 192.0.2.1:25");
    EXPECT_EQ(reply_between(run, spans[1].started, end_of(1)), "220 mx.example.com ESMTP");
    // A multi-line reply by its first line, the one that names the server.
    EXPECT_EQ(reply_between(run, spans[2].started, end_of(2)), "250-mx.example.com");
    EXPECT_EQ(reply_between(run, spans[3].started, end_of(3)), "220 Ready");
    EXPECT_EQ(reply_between(run, spans[4].started, end_of(4)), "");
}

TEST(WaterfallRender, TextHasTheWaterfallTheCertificateAndTheReason) {
    const OneRun run = made_up_run();
    TargetConfig target;
    target.name = "mx.example.com:25";
    const std::string text = render_check_text(target, std::span(&run, 1), false);
    EXPECT_NE(text.find("connect  failed: tls_cert_hostname in 10.0 ms"), std::string::npos)
        << text;
    // banner: 2 ms from 1 ms into a 10 ms run on 30 columns: 3 spaces, then 6 columns of bar.
    const std::string banner = "  banner" + std::string(11, ' ') + "2.0 ms" +
                               std::string(2 + 3, ' ') + "######" + std::string(21 + 2, ' ') +
                               "220 mx.example.com ESMTP\n";
    EXPECT_NE(text.find(banner), std::string::npos) << text;
    // The last phase has no reply: what failed stands in for it.
    EXPECT_NE(text.find("#######  certificate: hostname mismatch"), std::string::npos) << text;
    EXPECT_NE(text.find("certificate   CN=other.example.com"), std::string::npos) << text;
    EXPECT_NE(text.find("names       other.example.com, 192.0.2.9"), std::string::npos) << text;
    EXPECT_NE(text.find("(expires in 2 days)"), std::string::npos) << text;
    EXPECT_NE(text.find("tls           TLSv1.3 TLS_AES_128_GCM_SHA256"), std::string::npos) << text;
    EXPECT_NE(text.find("outcome       failed: tls_cert_hostname"), std::string::npos) << text;
    EXPECT_NE(text.find("reason        certificate: hostname mismatch"), std::string::npos) << text;
    EXPECT_EQ(text.find("transcript"), std::string::npos) << "only with -v";
    const std::string verbose = render_check_text(target, std::span(&run, 1), true);
    EXPECT_NE(verbose.find("C: AUTH PLAIN <redacted>"), std::string::npos) << verbose;
}

TEST(WaterfallRender, JsonIsOneDocumentWithEveryFact) {
    const OneRun run = made_up_run();
    TargetConfig target;
    target.name = "mx.example.com:25";
    target.host = "mx.example.com";
    const std::string json = render_check_json(target, std::span(&run, 1), false);
    EXPECT_EQ(json.find('\n'), json.size() - 1) << "one line: " << json;
    for (
        const char* part :
        {R"("target":"mx.example.com:25","host":"mx.example.com","port":25,"tls":"starttls")",
         R"("success":false)", R"("probe":"connect")", R"("reason":"tls_cert_hostname")",
         R"("detail":"certificate: hostname mismatch")", R"("duration_seconds":0.01)",
         R"({"phase":"banner","start_seconds":0.001,"duration_seconds":0.002,"reply":"220 mx.example.com ESMTP"})",
         R"("tls":{"version":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256"})",
         R"("issuer":"CN=Some \"CA\"")", R"("alt_names":["other.example.com","192.0.2.9"])"}) {
        EXPECT_NE(json.find(part), std::string::npos) << part << "\n" << json;
    }
    EXPECT_EQ(json.find("transcript"), std::string::npos);
    const std::string verbose = render_check_json(target, std::span(&run, 1), true);
    EXPECT_NE(verbose.find(
                  R"({"at_seconds":0.00495,"direction":"client","text":"AUTH PLAIN <redacted>"})"),
              std::string::npos)
        << verbose;
}

}  // namespace
}  // namespace mailcanary
