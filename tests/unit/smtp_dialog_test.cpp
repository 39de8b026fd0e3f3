// The SMTP dialog byte-exact, without sockets: each test is a script of what the server sends and
// what the client must write, and ends with the outcome.
#include "probes/smtp_dialog.hpp"

#include <gtest/gtest.h>

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
    // Plays the script against the dialog and checks that it ends with `done`.
    void play(DialogOptions options, const std::vector<Step>& script) {
        dialog_.emplace(std::move(options), transcript_);
        Action action = dialog_->start();
        for (std::size_t i = 0; i < script.size(); ++i) {
            const Step& step = script[i];
            SCOPED_TRACE("step " + std::to_string(i) + " (" + step.bytes + ")");
            switch (step.kind) {
                case Step::Kind::server_sends:
                    ASSERT_EQ(action.kind, Action::Kind::read) << kind_name(action.kind);
                    action = dialog_->on_bytes(step.bytes);
                    break;
                case Step::Kind::client_writes:
                    ASSERT_EQ(action.kind, Action::Kind::write) << kind_name(action.kind);
                    ASSERT_EQ(std::string(action.bytes), step.bytes);
                    action = dialog_->on_written();
                    break;
                case Step::Kind::tls:
                    ASSERT_EQ(action.kind, Action::Kind::start_tls) << kind_name(action.kind);
                    EXPECT_EQ(action.phase, Phase::tls_handshake);
                    action = dialog_->on_tls_established();
                    break;
                case Step::Kind::server_closes:
                    ASSERT_EQ(action.kind, Action::Kind::read) << kind_name(action.kind);
                    action = dialog_->on_closed();
                    break;
            }
        }
        ASSERT_EQ(action.kind, Action::Kind::done) << kind_name(action.kind);
        EXPECT_TRUE(dialog_->finished());
    }

    Transcript transcript_;
    std::optional<Dialog> dialog_;
};

const DialogOptions kPlain{TlsMode::none, "probe.example"};
const DialogOptions kStartTls{TlsMode::starttls, "probe.example"};
const DialogOptions kImplicit{TlsMode::implicit, "probe.example"};

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
