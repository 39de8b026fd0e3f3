// The SMTP dialog byte-exact, without sockets: each test is a script of what the server sends and
// what the client must write, and ends with the outcome.
#include "protocols/smtp_dialog.hpp"

#include <gtest/gtest.h>

#include "support/provider_transcripts.hpp"

namespace mailcanary::smtp {
namespace {

struct Step {
    enum class Kind { server_sends, client_writes, tls, server_closes } kind;
    std::string bytes;
};
Step S(std::string bytes) { return {Step::Kind::server_sends, std::move(bytes)}; }
Step C(std::string bytes) { return {Step::Kind::client_writes, std::move(bytes)}; }
Step TLS() { return {Step::Kind::tls, {}}; }
Step CLOSE() { return {Step::Kind::server_closes, {}}; }

const char* kind_name(Action::Kind kind) {
    switch (kind) {
        case Action::Kind::read:
            return "read";
        case Action::Kind::buffered:
            return "buffered";
        case Action::Kind::write:
            return "write";
        case Action::Kind::start_tls:
            return "start_tls";
        case Action::Kind::done:
            return "done";
    }
    return "?";
}

class DialogTest : public testing::Test {
  protected:
    // Plays the script against the dialog and checks that it ends with `done`. Replies that
    // came together are taken one step each, as the driver does.
    void play(DialogOptions options, const std::vector<Step>& script) {
        dialog_.emplace(std::move(options), transcript_);
        phases_.clear();
        Action action = entered(dialog_->start());
        for (std::size_t i = 0; i < script.size(); ++i) {
            const Step& step = script[i];
            SCOPED_TRACE("step " + std::to_string(i) + " (" + step.bytes + ")");
            switch (step.kind) {
                case Step::Kind::server_sends:
                    ASSERT_EQ(action.kind, Action::Kind::read) << kind_name(action.kind);
                    action = entered(dialog_->on_bytes(step.bytes));
                    while (action.kind == Action::Kind::buffered) {
                        action = entered(dialog_->on_bytes({}));
                    }
                    break;
                case Step::Kind::client_writes:
                    ASSERT_EQ(action.kind, Action::Kind::write) << kind_name(action.kind);
                    ASSERT_EQ(std::string(action.bytes), step.bytes);
                    action = entered(dialog_->on_written());
                    break;
                case Step::Kind::tls:
                    ASSERT_EQ(action.kind, Action::Kind::start_tls) << kind_name(action.kind);
                    EXPECT_EQ(action.phase, Phase::tls_handshake);
                    action = entered(dialog_->on_tls_established());
                    break;
                case Step::Kind::server_closes:
                    ASSERT_EQ(action.kind, Action::Kind::read) << kind_name(action.kind);
                    action = entered(dialog_->on_closed());
                    break;
            }
        }
        ASSERT_EQ(action.kind, Action::Kind::done) << kind_name(action.kind);
        EXPECT_TRUE(dialog_->finished());
    }

    // The driver enters each action's phase before it acts: the run records these, in order.
    Action entered(Action action) {
        if (action.kind != Action::Kind::done &&
            (phases_.empty() || phases_.back() != action.phase))
            phases_.push_back(action.phase);
        return action;
    }

    Transcript transcript_;
    std::optional<Dialog> dialog_;
    std::vector<Phase> phases_;
};

const DialogOptions kPlain{TlsMode::none, "probe.example", std::nullopt, std::nullopt};
const DialogOptions kStartTls{TlsMode::starttls, "probe.example", std::nullopt, std::nullopt};
const DialogOptions kImplicit{TlsMode::implicit, "probe.example", std::nullopt, std::nullopt};

TEST_F(DialogTest, PlainSession) {
    play(kPlain,
         {S("220 mx.example.test ESMTP Postfix\r\n"), C("EHLO probe.example\r\n"),
          S("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
          C("QUIT\r\n"), S("221 2.0.0 Bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
    EXPECT_TRUE(dialog_->has_capability("pipelining"));
    EXPECT_TRUE(dialog_->has_capability("SIZE"));
    EXPECT_FALSE(dialog_->has_capability("STARTTLS"));
    EXPECT_EQ(dialog_->replies(),
              (std::vector<ReplyRecord>{{"banner", 220}, {"ehlo", 250}, {"quit", 221}}));
}

TEST_F(DialogTest, StartTlsForgetsThePlaintextCapabilities) {
    play(kStartTls, {S("220 mx ESMTP\r\n"), C("EHLO probe.example\r\n"),
                     S("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), C("STARTTLS\r\n"),
                     S("220 2.0.0 Ready to start TLS\r\n"), TLS(), C("EHLO probe.example\r\n"),
                     S("250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n"), C("QUIT\r\n"),
                     S("221 Bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
    EXPECT_TRUE(dialog_->has_capability("AUTH"));
    EXPECT_FALSE(dialog_->has_capability("STARTTLS"));
    EXPECT_FALSE(dialog_->has_capability("PIPELINING"));
    EXPECT_EQ(
        dialog_->replies(),
        (std::vector<ReplyRecord>{
            {"banner", 220}, {"ehlo", 250}, {"starttls", 220}, {"ehlo", 250}, {"quit", 221}}));
}

TEST_F(DialogTest, ImplicitTlsStartsWithTheHandshake) {
    play(kImplicit, {TLS(), S("220 mx ESMTP\r\n"), C("EHLO probe.example\r\n"), S("250 mx\r\n"),
                     C("QUIT\r\n"), S("221 Bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
}

TEST_F(DialogTest, MultiLineGreetingAndDrippedBytes) {
    dialog_.emplace(kPlain, transcript_);
    Action action = dialog_->start();
    for (const char c : std::string("220-mx\r\n220-second line\r\n220 ready\r\n")) {
        ASSERT_EQ(action.kind, Action::Kind::read);
        action = dialog_->on_bytes(std::string_view(&c, 1));
    }
    ASSERT_EQ(action.kind, Action::Kind::write);
    EXPECT_EQ(action.bytes, "EHLO probe.example\r\n");
    EXPECT_EQ(action.phase, Phase::ehlo);
}

TEST_F(DialogTest, HeloFallbackWhenEhloIsUnknown) {
    play(kPlain, {S("220 old\r\n"), C("EHLO probe.example\r\n"), S("502 5.5.2 unknown command\r\n"),
                  C("HELO probe.example\r\n"), S("250 old\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
}

TEST_F(DialogTest, QuitAnsweredByClosingIsFine) {
    play(kPlain,
         {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250 mx\r\n"), C("QUIT\r\n"), CLOSE()});
    EXPECT_FALSE(dialog_->failure());
}

struct FailureCase {
    const char* name;
    DialogOptions options;
    std::vector<Step> script;
    FailureReason reason;
    const char* detail_part;
};

// Test names and logs show the case's name, not its bytes.
void PrintTo(const FailureCase& failure_case, std::ostream* out) { *out << failure_case.name; }

class DialogFailure : public DialogTest, public testing::WithParamInterface<FailureCase> {};

TEST_P(DialogFailure, HasItsReason) {
    play(GetParam().options, GetParam().script);
    ASSERT_TRUE(dialog_->failure());
    EXPECT_EQ(*dialog_->failure(), GetParam().reason) << to_string(*dialog_->failure());
    EXPECT_NE(dialog_->failure_detail().find(GetParam().detail_part), std::string::npos)
        << dialog_->failure_detail();
    EXPECT_NE(transcript_.to_text().find("failed: " + std::string(to_string(GetParam().reason))),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Reasons, DialogFailure,
    testing::Values(
        // 421 means the server closes: no QUIT.
        FailureCase{"banner_421",
                    kPlain,
                    {S("421 4.3.2 Service shutting down\r\n")},
                    FailureReason::banner_rejected,
                    "421 4.3.2"},
        // 554 leaves the session in step: a polite QUIT follows (RFC 5321 3.1).
        FailureCase{"banner_554",
                    kPlain,
                    {S("554 5.7.1 No SMTP service here\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::banner_rejected,
                    "554"},
        FailureCase{"ehlo_4xx",
                    kPlain,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("450 4.7.1 later\r\n"),
                     C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::ehlo_rejected,
                    "450"},
        FailureCase{"helo_rejected_after_ehlo_5xx",
                    kPlain,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("500 no\r\n"),
                     C("HELO probe.example\r\n"), S("550 5.7.1 go away\r\n"), C("QUIT\r\n"),
                     S("221 bye\r\n")},
                    FailureReason::ehlo_rejected,
                    "550 5.7.1"},
        FailureCase{"starttls_missing",
                    kStartTls,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 SIZE 10\r\n"),
                     C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::starttls_unavailable,
                    "STARTTLS"},
        FailureCase{"starttls_after_helo",
                    kStartTls,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("502 no\r\n"),
                     C("HELO probe.example\r\n"), S("250 mx\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::starttls_unavailable,
                    "EHLO"},
        FailureCase{"starttls_454",
                    kStartTls,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 STARTTLS\r\n"),
                     C("STARTTLS\r\n"), S("454 4.7.0 TLS not available\r\n"), C("QUIT\r\n"),
                     S("221 bye\r\n")},
                    FailureReason::starttls_rejected,
                    "454 4.7.0"},
        // Plaintext injected after the 220 to STARTTLS (CVE-2011-0411): never upgrade.
        FailureCase{"starttls_injection",
                    kStartTls,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 STARTTLS\r\n"),
                     C("STARTTLS\r\n"), S("220 go ahead\r\n250 injected\r\n")},
                    FailureReason::protocol,
                    "after its STARTTLS reply"},
        FailureCase{"ehlo_after_tls_rejected",
                    kStartTls,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 STARTTLS\r\n"),
                     C("STARTTLS\r\n"), S("220 go\r\n"), TLS(), C("EHLO probe.example\r\n"),
                     S("554 5.7.0 no\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::ehlo_rejected,
                    "554"},
        FailureCase{"garbage_banner",
                    kPlain,
                    {S("SSH-2.0-OpenSSH_9.2\r\n")},
                    FailureReason::protocol,
                    "malformed"},
        FailureCase{"unexpected_code",
                    kPlain,
                    {S("250 hello?\r\n")},
                    FailureReason::protocol,
                    "unexpected reply 250"},
        FailureCase{"unsolicited_data",
                    kPlain,
                    {S("220 mx\r\n250 extra\r\n")},
                    FailureReason::protocol,
                    "before the client's next command"},
        FailureCase{"closed_before_banner", kPlain, {CLOSE()}, FailureReason::closed, "banner"},
        FailureCase{"closed_during_ehlo",
                    kPlain,
                    {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n"), CLOSE()},
                    FailureReason::closed,
                    "ehlo"},
        // The polite QUIT after a rejection may meet a closed connection: the rejection stands.
        FailureCase{"closed_during_polite_quit",
                    kPlain,
                    {S("554 no\r\n"), C("QUIT\r\n"), CLOSE()},
                    FailureReason::banner_rejected,
                    "554"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

// --- AUTH --------------------------------------------------------------------------------------

const std::string kSecret = "s3cret-Pa55";

DialogOptions with_auth(std::optional<sasl::Mechanism> mechanism, bool token = false,
                        TlsMode tls = TlsMode::implicit) {
    return {tls, "probe.example",
            AuthRequest{.mechanism = mechanism,
                        .username = "probe@example.test",
                        .secret = token ? "ya29.token" : kSecret,
                        .secret_is_token = token,
                        .allow_plaintext = false,
                        .host = "mx.example.test",
                        .port = 465},
            std::nullopt};
}

std::vector<Step> greeted(const std::string& capabilities) {
    return {TLS(), S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n" + capabilities)};
}

std::vector<Step> operator+(std::vector<Step> a, const std::vector<Step>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

TEST_F(DialogTest, AuthPlainSendsTheInitialResponseAndRedactsIt) {
    play(with_auth(sasl::Mechanism::plain),
         greeted("250 AUTH PLAIN LOGIN\r\n") +
             std::vector{
                 C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n"),
                 S("235 2.7.0 Authentication successful\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
    const std::string text = transcript_.to_text();
    EXPECT_NE(text.find("C: AUTH PLAIN <redacted>\n"), std::string::npos) << text;
    EXPECT_EQ(text.find(sasl::plain_response("probe@example.test", kSecret)), std::string::npos);
    EXPECT_EQ(dialog_->replies().back(), (ReplyRecord{"quit", 221}));
    EXPECT_EQ(dialog_->replies()[dialog_->replies().size() - 2], (ReplyRecord{"auth", 235}));
}

TEST_F(DialogTest, AuthLoginAnswersBothChallenges) {
    play(with_auth(sasl::Mechanism::login),
         greeted("250 AUTH PLAIN LOGIN\r\n") +
             std::vector{C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"),
                         C("cHJvYmVAZXhhbXBsZS50ZXN0\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
                         C(sasl::base64_encode(kSecret) + "\r\n"), S("235 ok\r\n"), C("QUIT\r\n"),
                         S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
    const std::string text = transcript_.to_text();
    EXPECT_EQ(text.find(sasl::base64_encode(kSecret)), std::string::npos) << text;
    EXPECT_EQ(text.find("cHJvYmVAZXhhbXBsZS50ZXN0"), std::string::npos) << text;
}

TEST_F(DialogTest, AuthCramMd5AnswersTheChallenge) {
    const std::string challenge = "<1896.697170952@postoffice.reston.mci.net>";
    play(with_auth(std::nullopt),  // auto: CRAM-MD5 is the strongest offered
         greeted("250 AUTH LOGIN PLAIN CRAM-MD5\r\n") +
             std::vector{
                 C("AUTH CRAM-MD5\r\n"), S("334 " + sasl::base64_encode(challenge) + "\r\n"),
                 C(sasl::cram_md5_response("probe@example.test", kSecret, challenge) + "\r\n"),
                 S("235 ok\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
}

TEST_F(DialogTest, AuthXoauth2RefusedTokenGetsItsFinalReply) {
    play(with_auth(std::nullopt, true),
         greeted("250 AUTH XOAUTH2 PLAIN\r\n") +
             std::vector{
                 C("AUTH XOAUTH2 " + sasl::xoauth2_response("probe@example.test", "ya29.token") +
                   "\r\n"),
                 S("334 " + sasl::base64_encode(R"({"status":"401","schemes":"bearer"})") + "\r\n"),
                 C("\r\n"), S("535 5.7.8 Username and Password not accepted\r\n"), C("QUIT\r\n"),
                 S("221 bye\r\n")});
    ASSERT_EQ(dialog_->failure(), FailureReason::auth_rejected);
    EXPECT_NE(dialog_->failure_detail().find("535 5.7.8"), std::string::npos);
    EXPECT_NE(transcript_.to_text().find(R"(OAuth2 error: {"status":"401")"), std::string::npos);
    EXPECT_EQ(transcript_.to_text().find("ya29.token"), std::string::npos);
}

TEST_F(DialogTest, AuthOauthbearerUsesHostAndPort) {
    play(with_auth(sasl::Mechanism::oauthbearer, true),
         greeted("250 AUTH OAUTHBEARER XOAUTH2\r\n") +
             std::vector{C("AUTH OAUTHBEARER " +
                           sasl::oauthbearer_response("probe@example.test", "mx.example.test", 465,
                                                      "ya29.token") +
                           "\r\n"),
                         S("235 ok\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
}

struct AuthFailureCase {
    const char* name;
    DialogOptions options;
    std::vector<Step> script;
    FailureReason reason;
    const char* detail_part;
};

void PrintTo(const AuthFailureCase& failure_case, std::ostream* out) { *out << failure_case.name; }

class DialogAuthFailure : public DialogTest, public testing::WithParamInterface<AuthFailureCase> {};

TEST_P(DialogAuthFailure, HasItsReasonAndNeverShowsTheSecret) {
    play(GetParam().options, GetParam().script);
    ASSERT_TRUE(dialog_->failure());
    EXPECT_EQ(to_string(*dialog_->failure()), to_string(GetParam().reason));
    EXPECT_NE(dialog_->failure_detail().find(GetParam().detail_part), std::string::npos)
        << dialog_->failure_detail();
    EXPECT_EQ(transcript_.to_text().find(kSecret), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Reasons, DialogAuthFailure,
    testing::Values(
        AuthFailureCase{
            "rejected_535", with_auth(sasl::Mechanism::plain),
            greeted("250 AUTH PLAIN\r\n") +
                std::vector{
                    C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n"),
                    S("535 5.7.8 Error: authentication failed\r\n"), C("QUIT\r\n"),
                    S("221 bye\r\n")},
            FailureReason::auth_rejected, "535 5.7.8"},
        AuthFailureCase{
            "tempfail_454", with_auth(sasl::Mechanism::plain),
            greeted("250 AUTH PLAIN\r\n") +
                std::vector{
                    C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n"),
                    S("454 4.7.0 Temporary authentication failure\r\n"), C("QUIT\r\n"),
                    S("221 bye\r\n")},
            FailureReason::auth_tempfail, "454 4.7.0"},
        // Gmail's login rate limit: the same 454 4.7.0, but it names a rate.
        AuthFailureCase{
            "throttled_454", with_auth(sasl::Mechanism::plain),
            greeted("250 AUTH PLAIN\r\n") +
                std::vector{
                    C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n"),
                    S("454 4.7.0 Too many login attempts, please try again later.\r\n"),
                    C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::throttled, "Too many login attempts"},
        // Nothing is sent without TLS unless allowed: the run fails before AUTH.
        AuthFailureCase{"insecure",
                        with_auth(sasl::Mechanism::plain, false, TlsMode::none),
                        {S("220 mx\r\n"), C("EHLO probe.example\r\n"),
                         S("250-mx\r\n250 AUTH PLAIN\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                        FailureReason::auth_insecure,
                        "without TLS"},
        AuthFailureCase{"no_auth_capability", with_auth(std::nullopt),
                        greeted("250 SIZE 10\r\n") + std::vector{C("QUIT\r\n"), S("221 bye\r\n")},
                        FailureReason::auth_unavailable, "not among the EHLO capabilities"},
        AuthFailureCase{
            "mechanism_not_offered", with_auth(sasl::Mechanism::cram_md5),
            greeted("250 AUTH PLAIN LOGIN\r\n") + std::vector{C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::auth_unavailable, "server offers AUTH PLAIN LOGIN, not CRAM-MD5"},
        AuthFailureCase{
            "token_but_only_passwords", with_auth(std::nullopt, true),
            greeted("250 AUTH PLAIN LOGIN\r\n") + std::vector{C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::auth_unavailable, "not a token mechanism"},
        AuthFailureCase{"bad_cram_challenge", with_auth(sasl::Mechanism::cram_md5),
                        greeted("250 AUTH CRAM-MD5\r\n") +
                            std::vector{C("AUTH CRAM-MD5\r\n"), S("334 !!!not-base64\r\n")},
                        FailureReason::protocol, "not base64"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

// A provider's submission server byte for byte (support/provider_transcripts.hpp): banner,
// EHLO, STARTTLS, EHLO again, then `login` (the client's AUTH and the server's answers), its
// last answer `refusal`, and QUIT.
std::vector<Step> provider_login(const std::string& banner, const std::string& ehlo,
                                 const std::string& starttls, const std::string& ehlo_after_tls,
                                 std::vector<Step> login, const std::string& refusal,
                                 const std::string& quit) {
    std::vector<Step> script{
        S(banner), C("EHLO probe.example\r\n"), S(ehlo),          C("STARTTLS\r\n"), S(starttls),
        TLS(),     C("EHLO probe.example\r\n"), S(ehlo_after_tls)};
    script.insert(script.end(), login.begin(), login.end());
    return script + std::vector{S(refusal), C("QUIT\r\n"), S(quit)};
}

// Exchange offers AUTH LOGIN XOAUTH2: a password goes with LOGIN.
std::vector<Step> microsoft_login(const std::string& refusal) {
    namespace p = test::providers;
    return provider_login(p::kMicrosoftBanner, p::kMicrosoftEhlo, p::kMicrosoftStartTls,
                          p::kMicrosoftEhloAfterTls,
                          {C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"),
                           C(sasl::base64_encode("probe@example.test") + "\r\n"),
                           S("334 UGFzc3dvcmQ6\r\n"), C(sasl::base64_encode(kSecret) + "\r\n")},
                          refusal, p::kMicrosoftQuit);
}

// Gmail offers PLAIN among others: the strongest for a password.
std::vector<Step> gmail_login(const std::string& refusal) {
    namespace p = test::providers;
    return provider_login(
        p::kGmailBanner, p::kGmailEhlo, p::kGmailStartTls, p::kGmailEhloAfterTls,
        {C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n")}, refusal,
        p::kGmailQuit);
}

const DialogOptions kProviderLogin = with_auth(std::nullopt, false, TlsMode::starttls);

INSTANTIATE_TEST_SUITE_P(
    Providers, DialogAuthFailure,
    testing::Values(AuthFailureCase{"microsoft_smtp_auth_disabled", kProviderLogin,
                                    microsoft_login(test::providers::kMicrosoftSmtpAuthDisabled),
                                    FailureReason::auth_disabled,
                                    "SmtpClientAuthentication is disabled"},
                    AuthFailureCase{"microsoft_basic_auth_retired", kProviderLogin,
                                    microsoft_login(test::providers::kMicrosoftBasicAuthRetired),
                                    FailureReason::auth_disabled, "550 5.7.30"},
                    AuthFailureCase{"microsoft_wrong_password", kProviderLogin,
                                    microsoft_login(test::providers::kMicrosoftWrongPassword),
                                    FailureReason::auth_rejected, "credentials were incorrect"},
                    AuthFailureCase{"gmail_app_password_required", kProviderLogin,
                                    gmail_login(test::providers::kGmailAppPasswordRequired),
                                    FailureReason::auth_disabled, "534 5.7.9"},
                    AuthFailureCase{"gmail_web_login_required", kProviderLogin,
                                    gmail_login(test::providers::kGmailWebLoginRequired),
                                    FailureReason::auth_disabled, "534 5.7.14"},
                    AuthFailureCase{"gmail_wrong_password", kProviderLogin,
                                    gmail_login(test::providers::kGmailWrongPassword),
                                    FailureReason::auth_rejected, "535 5.7.8"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST_F(DialogTest, PlaintextAuthWhenExplicitlyAllowed) {
    auto options = with_auth(sasl::Mechanism::plain, false, TlsMode::none);
    options.auth->allow_plaintext = true;
    play(options, {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 AUTH PLAIN\r\n"),
                   C("AUTH PLAIN " + sasl::plain_response("probe@example.test", kSecret) + "\r\n"),
                   S("235 ok\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure());
}

// --- Mail transaction
// -----------------------------------------------------------------------------

const std::string kMessage = "Subject: x\r\n\r\nbody\r\n.\r\n";

DialogOptions with_transaction(std::vector<std::string> to = {"probe@example.test"},
                               bool rcpt_only = false) {
    return {TlsMode::none, "probe.example", std::nullopt,
            TransactionRequest{.from = "canary@example.org",
                               .to = std::move(to),
                               .message = kMessage,
                               .rcpt_only = rcpt_only}};
}

std::vector<Step> ehlo_with(const std::string& capabilities) {
    return {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n" + capabilities)};
}

TEST_F(DialogTest, TransactionWithoutPipeliningOneCommandAtATime) {
    play(with_transaction({"a@example.test", "b@example.test"}),
         ehlo_with("250 8BITMIME\r\n") +
             std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 2.1.0 Ok\r\n"),
                         C("RCPT TO:<a@example.test>\r\n"), S("250 2.1.5 Ok\r\n"),
                         C("RCPT TO:<b@example.test>\r\n"), S("251 2.1.5 will forward\r\n"),
                         C("DATA\r\n"), S("354 End data with <CR><LF>.<CR><LF>\r\n"), C(kMessage),
                         S("250 2.0.0 Ok: queued as 4Q9xYz1ABC\r\n"), C("QUIT\r\n"),
                         S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
    EXPECT_EQ(dialog_->queue_id(), "4Q9xYz1ABC");
    EXPECT_EQ(dialog_->replies(), (std::vector<ReplyRecord>{{"banner", 220},
                                                            {"ehlo", 250},
                                                            {"mail", 250},
                                                            {"rcpt", 250},
                                                            {"rcpt", 251},
                                                            {"data", 354},
                                                            {"data_end", 250},
                                                            {"quit", 221}}));
}

TEST_F(DialogTest, PipelinedTransactionAttributesEachReplyAndWaitsBeforeData) {
    play(
        with_transaction({"a@example.test", "b@example.test"}),
        ehlo_with("250-PIPELINING\r\n250 SIZE 10240000\r\n") +
            std::vector{C("MAIL FROM:<canary@example.org> SIZE=" + std::to_string(kMessage.size()) +
                          "\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"),
                        // All three replies in one segment, as a pipelining server sends them.
                        S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"), C("DATA\r\n"),
                        S("354 go ahead\r\n"), C(kMessage), S("250 2.0.0 Ok: queued as ABC\r\n"),
                        C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
    EXPECT_EQ(dialog_->replies(), (std::vector<ReplyRecord>{{"banner", 220},
                                                            {"ehlo", 250},
                                                            {"mail", 250},
                                                            {"rcpt", 250},
                                                            {"rcpt", 250},
                                                            {"data", 354},
                                                            {"data_end", 250},
                                                            {"quit", 221}}));
    // Each reply closes its command's phase, even when they arrive together.
    EXPECT_EQ(phases_, (std::vector{Phase::banner, Phase::ehlo, Phase::mail, Phase::rcpt,
                                    Phase::data, Phase::data_end, Phase::quit}));
}

// The queue id is noted from any known form of the reply to the final dot; in another form none
// is made up, and the transcript keeps the whole reply either way.
TEST_F(DialogTest, QueueIdFromTheFinalReplyWhichTheTranscriptKeepsWhole) {
    const std::vector<std::pair<std::string, std::optional<std::string>>> finals{
        {"250 2.0.0 471ecd43 Message accepted for delivery", "471ecd43"},
        {"250 2.0.0 Great success, thanks", std::nullopt}};
    for (const auto& [final_reply, id] : finals) {
        SCOPED_TRACE(final_reply);
        transcript_ = Transcript();
        play(with_transaction(),
             ehlo_with("250 8BITMIME\r\n") +
                 std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                             C("RCPT TO:<probe@example.test>\r\n"), S("250 ok\r\n"), C("DATA\r\n"),
                             S("354 go\r\n"), C(kMessage), S(final_reply + "\r\n"), C("QUIT\r\n"),
                             S("221 bye\r\n")});
        EXPECT_TRUE(dialog_->message_accepted());
        EXPECT_EQ(dialog_->queue_id(), id);
        const std::string text = transcript_.to_text();
        EXPECT_NE(text.find("S: " + final_reply + "\n"), std::string::npos) << text;
        EXPECT_EQ(text.find("queued as") != std::string::npos, id.has_value()) << text;
    }
}

TEST_F(DialogTest, RcptModeResetsInsteadOfSendingData) {
    play(with_transaction({"a@example.test"}, true),
         ehlo_with("250 PIPELINING\r\n") +
             std::vector{
                 C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>\r\nRSET\r\n"),
                 S("250 Ok\r\n250 Ok\r\n250 2.0.0 Ok\r\n"), C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_FALSE(dialog_->failure()) << dialog_->failure_detail();
    EXPECT_EQ(dialog_->replies()[4], (ReplyRecord{"rset", 250}));
}

// One recipient refused, the other accepted: no DATA, so the probe's message reaches nobody (a
// 354 to a pipelined DATA would have committed the client to sending it to the other one).
TEST_F(DialogTest, PipelinedRefusedRecipientSendsNoData) {
    play(with_transaction({"a@example.test", "nobody@example.test"}),
         ehlo_with("250 PIPELINING\r\n") +
             std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>\r\n"
                           "RCPT TO:<nobody@example.test>\r\n"),
                         S("250 Ok\r\n250 Ok\r\n550 5.1.1 <nobody@example.test>: Recipient address "
                           "rejected\r\n"),
                         C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_EQ(dialog_->failure(), FailureReason::rcpt_rejected);
    EXPECT_NE(dialog_->failure_detail().find("550 5.1.1 <nobody@example.test>"), std::string::npos);
    EXPECT_FALSE(dialog_->message_accepted());
    EXPECT_EQ(transcript_.to_text().find("DATA"), std::string::npos) << transcript_.to_text();
}

TEST_F(DialogTest, RefusedFirstRecipientWithoutPipeliningSendsNoData) {
    play(with_transaction({"nobody@example.test", "a@example.test"}),
         ehlo_with("250 8BITMIME\r\n") +
             std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 Ok\r\n"),
                         C("RCPT TO:<nobody@example.test>\r\n"), S("550 5.1.1 unknown\r\n"),
                         C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_EQ(dialog_->failure(), FailureReason::rcpt_rejected);
    EXPECT_FALSE(dialog_->message_accepted());
}

TEST_F(DialogTest, MessageOverTheAdvertisedSizeIsNotSent) {
    play(with_transaction(),
         ehlo_with("250 SIZE 10\r\n") + std::vector{C("QUIT\r\n"), S("221 bye\r\n")});
    EXPECT_EQ(dialog_->failure(), FailureReason::size_exceeded);
    EXPECT_NE(dialog_->failure_detail().find("SIZE limit of 10"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Transaction, DialogFailure,
    testing::Values(
        FailureCase{
            "mail_550", with_transaction(),
            ehlo_with("250 8BITMIME\r\n") + std::vector{C("MAIL FROM:<canary@example.org>\r\n"),
                                                        S("550 5.7.1 Sender rejected\r\n"),
                                                        C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::mail_rejected, "550 5.7.1"},
        FailureCase{"mail_451", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"),
                                    S("451 4.3.0 try later\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::mail_tempfail, "451"},
        FailureCase{"mail_552", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"),
                                    S("552 5.3.4 too big\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::size_exceeded, "552"},
        FailureCase{"rcpt_554", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                                    C("RCPT TO:<probe@example.test>\r\n"),
                                    S("554 5.7.1 Relay access denied\r\n"), C("QUIT\r\n"),
                                    S("221 bye\r\n")},
                    FailureReason::rcpt_rejected, "554 5.7.1 Relay"},
        FailureCase{"rcpt_450", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                                    C("RCPT TO:<probe@example.test>\r\n"),
                                    S("450 4.2.0 greylisted\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::rcpt_tempfail, "greylisted"},
        FailureCase{"data_554", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                                    C("RCPT TO:<probe@example.test>\r\n"), S("250 ok\r\n"),
                                    C("DATA\r\n"), S("554 5.5.1 no valid recipients\r\n"),
                                    C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::data_rejected, "554 5.5.1"},
        FailureCase{
            "data_451", with_transaction(),
            ehlo_with("250 8BITMIME\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                            C("RCPT TO:<probe@example.test>\r\n"), S("250 ok\r\n"), C("DATA\r\n"),
                            S("451 4.3.0 later\r\n"), C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::data_tempfail, "451"},
        FailureCase{
            "message_554", with_transaction(),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>\r\n"),
                            S("250 ok\r\n250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"), C(kMessage),
                            S("554 5.7.1 Message rejected as spam\r\n"), C("QUIT\r\n"),
                            S("221 bye\r\n")},
            FailureReason::message_rejected, "spam"},
        FailureCase{
            "message_451", with_transaction(),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>\r\n"),
                            S("250 ok\r\n250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"), C(kMessage),
                            S("451 4.3.0 queue file write error\r\n"), C("QUIT\r\n"),
                            S("221 bye\r\n")},
            FailureReason::message_tempfail, "queue file"},
        FailureCase{
            "message_552", with_transaction(),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>\r\n"),
                            S("250 ok\r\n250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"), C(kMessage),
                            S("552 5.3.4 Message size exceeds fixed limit\r\n"), C("QUIT\r\n"),
                            S("221 bye\r\n")},
            FailureReason::size_exceeded, "552 5.3.4"},
        // A pipelined MAIL refusal: the server also answers RCPT, then QUIT follows.
        FailureCase{
            "pipelined_mail_rejected", with_transaction(),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>\r\n"),
                            S("553 5.1.8 bad sender\r\n503 5.5.1 need MAIL\r\n"), C("QUIT\r\n"),
                            S("221 bye\r\n")},
            FailureReason::mail_rejected, "553 5.1.8"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

// --- Throttling --------------------------------------------------------------------------------

// A server that throttles the client fails the run as `throttled` whatever command it answered
// (protocols/smtp_throttling; the sources in smtp_throttling_test.cpp); greylisting does not.
INSTANTIATE_TEST_SUITE_P(
    Throttling, DialogFailure,
    testing::Values(
        // Postfix's anvil past smtpd_client_connection_rate_limit: closes, so no QUIT.
        FailureCase{"banner_421_anvil",
                    kPlain,
                    {S("421 4.7.0 mx.example.test Error: too many connections from 127.0.0.1\r\n")},
                    FailureReason::throttled,
                    "too many connections"},
        FailureCase{"ehlo_421_gmail",
                    kPlain,
                    {S("220 mx.google.com ESMTP\r\n"), C("EHLO probe.example\r\n"),
                     S("421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
                       "421 4.7.0  https://support.google.com/a/answer/3221692\r\n")},
                    FailureReason::throttled,
                    "421 4.7.0"},
        FailureCase{"mail_451_microsoft", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"),
                                    S("451 4.7.500 Server busy. Please try again later from "
                                      "[192.0.2.1]. (S77719)\r\n"),
                                    C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::throttled, "4.7.500"},
        FailureCase{"mail_450_postfix_message_rate", with_transaction(),
                    ehlo_with("250 8BITMIME\r\n") +
                        std::vector{C("MAIL FROM:<canary@example.org>\r\n"),
                                    S("450 4.7.1 Error: too much mail from 127.0.0.1\r\n"),
                                    C("QUIT\r\n"), S("221 bye\r\n")},
                    FailureReason::throttled, "too much mail"},
        FailureCase{
            "rcpt_451_greylisting_is_not_throttling", with_transaction(),
            ehlo_with("250 8BITMIME\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\n"), S("250 ok\r\n"),
                            C("RCPT TO:<probe@example.test>\r\n"),
                            S("451 4.7.1 Greylisting in action, please try again later\r\n"),
                            C("QUIT\r\n"), S("221 bye\r\n")},
            FailureReason::rcpt_tempfail, "Greylisting"},
        // Gmail's flood limit as the final reply: the 421 closes, no QUIT.
        FailureCase{
            "message_421_gmail_flood", with_transaction(),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>\r\n"),
                            S("250 ok\r\n250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"), C(kMessage),
                            S("421-4.7.28 Our system has detected an unusual rate of\r\n"
                              "421 4.7.28 unsolicited mail originating from your IP address.\r\n")},
            FailureReason::throttled, "4.7.28"}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

// --- Packet boundaries ---------------------------------------------------------------------

// A run must not depend on how the server's bytes were cut into reads: each server turn split
// at every position, and every turn dripped byte by byte, gives the same phases, replies,
// transcript and outcome as the turns whole.
struct SplitCase {
    const char* name;
    DialogOptions options;
    std::vector<Step> script;
};

void PrintTo(const SplitCase& split_case, std::ostream* out) { *out << split_case.name; }

class DialogSplits : public DialogTest, public testing::WithParamInterface<SplitCase> {
  protected:
    struct Seen {
        std::vector<Phase> phases;
        std::vector<ReplyRecord> replies;
        std::vector<std::string> transcript;
        std::optional<FailureReason> failure;
        std::string detail;
        std::optional<std::string> queue_id;
    };

    Seen seen(const std::vector<Step>& script) {
        transcript_ = Transcript();
        play(GetParam().options, script);
        Seen result{phases_,
                    dialog_->replies(),
                    {},
                    dialog_->failure(),
                    dialog_->failure_detail(),
                    dialog_->queue_id()};
        for (const auto& entry : transcript_.entries()) {
            result.transcript.push_back(std::to_string(static_cast<int>(entry.direction)) + " " +
                                        entry.text);
        }
        return result;
    }

    void expect_same(const Seen& whole, const Seen& cut) {
        EXPECT_EQ(cut.phases, whole.phases);
        EXPECT_EQ(cut.replies, whole.replies);
        EXPECT_EQ(cut.transcript, whole.transcript);
        EXPECT_EQ(cut.failure, whole.failure);
        EXPECT_EQ(cut.detail, whole.detail);
        EXPECT_EQ(cut.queue_id, whole.queue_id);
    }
};

TEST_P(DialogSplits, SameRunWhereverTheServersBytesAreCut) {
    const std::vector<Step>& script = GetParam().script;
    const Seen whole = seen(script);
    ASSERT_FALSE(HasFailure());
    std::vector<Step> dripped;
    for (std::size_t turn = 0; turn < script.size(); ++turn) {
        const Step& step = script[turn];
        if (step.kind != Step::Kind::server_sends) {
            dripped.push_back(step);
            continue;
        }
        for (const char byte : step.bytes) dripped.push_back(S(std::string(1, byte)));
        for (std::size_t at = 1; at < step.bytes.size(); ++at) {
            SCOPED_TRACE("turn " + std::to_string(turn) + " cut at " + std::to_string(at));
            std::vector<Step> cut = script;
            cut[turn] = S(step.bytes.substr(0, at));
            cut.insert(cut.begin() + static_cast<std::ptrdiff_t>(turn) + 1,
                       S(step.bytes.substr(at)));
            expect_same(whole, seen(cut));
            if (HasFailure()) return;  // one cut's report is enough
        }
    }
    SCOPED_TRACE("every byte apart");
    expect_same(whole, seen(dripped));
}

DialogOptions login_and_transaction() {
    DialogOptions options = with_transaction({"a@example.test", "b@example.test"});
    options.tls = TlsMode::starttls;
    options.auth = AuthRequest{.mechanism = sasl::Mechanism::login,
                               .username = "probe@example.test",
                               .secret = kSecret,
                               .secret_is_token = false,
                               .allow_plaintext = false,
                               .host = "mx.example.test",
                               .port = 587};
    return options;
}

INSTANTIATE_TEST_SUITE_P(
    Dialogs, DialogSplits,
    testing::Values(
        SplitCase{"one_command_at_a_time", with_transaction({"a@example.test", "b@example.test"}),
                  ehlo_with("250-8BITMIME\r\n250 SIZE 10240000\r\n") +
                      std::vector{C("MAIL FROM:<canary@example.org> SIZE=" +
                                    std::to_string(kMessage.size()) + "\r\n"),
                                  S("250 2.1.0 Ok\r\n"), C("RCPT TO:<a@example.test>\r\n"),
                                  S("250 2.1.5 Ok\r\n"), C("RCPT TO:<b@example.test>\r\n"),
                                  S("250 2.1.5 Ok\r\n"), C("DATA\r\n"), S("354 go ahead\r\n"),
                                  C(kMessage), S("250 2.0.0 Ok: queued as 4Q9xYz1ABC\r\n"),
                                  C("QUIT\r\n"), S("221 2.0.0 Bye\r\n")}},
        SplitCase{
            "pipelined", with_transaction({"a@example.test", "b@example.test"}),
            ehlo_with("250 PIPELINING\r\n") +
                std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>"
                              "\r\nRCPT TO:<b@example.test>\r\n"),
                            S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"), C("DATA\r\n"),
                            S("354 go ahead\r\n"), C(kMessage), S("250 OK id=1xZ1xz-0008NV-22\r\n"),
                            C("QUIT\r\n"), S("221 bye\r\n")}},
        SplitCase{"pipelined_refused_recipient",
                  with_transaction({"a@example.test", "nobody@example.test"}),
                  ehlo_with("250 PIPELINING\r\n") +
                      std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>"
                                    "\r\nRCPT TO:<nobody@example.test>\r\n"),
                                  S("250 Ok\r\n250 Ok\r\n550 5.1.1 unknown user\r\n"),
                                  C("QUIT\r\n"), S("221 bye\r\n")}},
        SplitCase{"pipelined_sender_refused", with_transaction(),
                  ehlo_with("250 PIPELINING\r\n") +
                      std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>"
                                    "\r\n"),
                                  S("553 5.1.8 bad sender\r\n503 5.5.1 need MAIL\r\n"),
                                  C("QUIT\r\n"), S("221 bye\r\n")}},
        SplitCase{"pipelined_closing_421", with_transaction(),
                  ehlo_with("250 PIPELINING\r\n") +
                      std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<probe@example.test>"
                                    "\r\n"),
                                  S("250 Ok\r\n421 4.3.2 shutting down\r\n")}},
        SplitCase{"pipelined_rcpt_mode", with_transaction({"a@example.test"}, true),
                  ehlo_with("250 PIPELINING\r\n") +
                      std::vector{C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>"
                                    "\r\nRSET\r\n"),
                                  S("250 Ok\r\n250 Ok\r\n250 2.0.0 Ok\r\n"), C("QUIT\r\n"),
                                  S("221 bye\r\n")}},
        SplitCase{
            "starttls_login_pipelined",
            login_and_transaction(),
            {S("220-mx.example.test ESMTP\r\n220 ready\r\n"), C("EHLO probe.example\r\n"),
             S("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"), C("STARTTLS\r\n"),
             S("220 2.0.0 go\r\n"), TLS(), C("EHLO probe.example\r\n"),
             S("250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n"), C("AUTH LOGIN\r\n"),
             S("334 VXNlcm5hbWU6\r\n"), C(sasl::base64_encode("probe@example.test") + "\r\n"),
             S("334 UGFzc3dvcmQ6\r\n"), C(sasl::base64_encode(kSecret) + "\r\n"),
             S("235 2.7.0 ok\r\n"),
             C("MAIL FROM:<canary@example.org>\r\nRCPT TO:<a@example.test>\r\n"
               "RCPT TO:<b@example.test>\r\n"),
             S("250 Ok\r\n250 Ok\r\n450 4.2.0 greylisted\r\n"), C("QUIT\r\n"), S("221 bye\r\n")}}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST_F(DialogTest, PhasesFollowTheDialog) {
    dialog_.emplace(kStartTls, transcript_);
    EXPECT_EQ(dialog_->start().phase, Phase::banner);
    EXPECT_EQ(dialog_->on_bytes("220 mx\r\n").phase, Phase::ehlo);
    EXPECT_EQ(dialog_->on_written().phase, Phase::ehlo);
    EXPECT_EQ(dialog_->on_bytes("250-mx\r\n250 STARTTLS\r\n").phase, Phase::starttls);
    EXPECT_EQ(dialog_->on_written().phase, Phase::starttls);
    EXPECT_EQ(dialog_->on_bytes("220 go\r\n").phase, Phase::tls_handshake);
    EXPECT_EQ(dialog_->on_tls_established().phase, Phase::ehlo);
    EXPECT_EQ(dialog_->on_written().phase, Phase::ehlo);
    EXPECT_EQ(dialog_->on_bytes("250 mx\r\n").phase, Phase::quit);
    EXPECT_TRUE(dialog_->can_quit() == false);
}

TEST_F(DialogTest, TranscriptShowsBothSides) {
    play(kPlain, {S("220 mx\r\n"), C("EHLO probe.example\r\n"), S("250-mx\r\n250 SIZE 1\r\n"),
                  C("QUIT\r\n"), S("221 bye\r\n")});
    const std::string text = transcript_.to_text();
    EXPECT_NE(text.find("S: 220 mx\n"), std::string::npos) << text;
    EXPECT_NE(text.find("C: EHLO probe.example\n"), std::string::npos) << text;
    EXPECT_NE(text.find("S: 250-mx\n"), std::string::npos) << text;
    EXPECT_NE(text.find("S: 250 SIZE 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("C: QUIT\n"), std::string::npos) << text;
}

TEST(Transcript, EscapesControlCharactersAndStaysBounded) {
    Transcript transcript;
    transcript.server(std::string("220 \x1b[31mred\x00", 13));
    EXPECT_NE(transcript.to_text().find("220 \\x1b[31mred\\x00"), std::string::npos);
    for (int i = 0; i < 1000; ++i) transcript.server(std::string(100, 'x'));
    EXPECT_TRUE(transcript.truncated());
    EXPECT_LE(transcript.entries().size(), Transcript::kMaxEntries);
}

}  // namespace
}  // namespace mailcanary::smtp
