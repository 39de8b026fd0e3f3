// The IMAP state machine, byte for byte, without sockets.
#include <gtest/gtest.h>

#include "protocols/imap_dialog.hpp"
#include "protocols/sasl.hpp"
#include "support/provider_transcripts.hpp"

namespace mailcanary::imap {
namespace {

using Kind = Action::Kind;

std::vector<Response> read_all(std::string_view bytes) {
    ResponseReader reader;
    reader.feed(bytes);
    std::vector<Response> out;
    while (auto response = reader.next()) out.push_back(std::move(*response));
    EXPECT_EQ(reader.error(), "");
    return out;
}

TEST(ImapResponseReader, TaggedUntaggedAndContinuation) {
    const auto responses = read_all(
        "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
        "* 12 EXISTS\r\n"
        "+ idling\r\n"
        "C1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    ASSERT_EQ(responses.size(), 4u);
    EXPECT_EQ(responses[0].kind, Response::Kind::untagged);
    EXPECT_EQ(responses[0].name, "OK");
    EXPECT_EQ(responses[0].code, "CAPABILITY IMAP4rev1 IDLE");
    EXPECT_EQ(responses[0].text, "ready");
    EXPECT_EQ(responses[1].number, 12u);
    EXPECT_EQ(responses[1].name, "EXISTS");
    EXPECT_EQ(responses[2].kind, Response::Kind::continuation);
    EXPECT_EQ(responses[2].text, "idling");
    EXPECT_EQ(responses[3].kind, Response::Kind::tagged);
    EXPECT_EQ(responses[3].tag, "C1");
    EXPECT_EQ(responses[3].name, "NO");
    EXPECT_EQ(responses[3].code, "AUTHENTICATIONFAILED");
    EXPECT_EQ(responses[3].text, "Authentication failed.");
}

TEST(ImapResponseReader, FetchWithLiteralArrivingInPieces) {
    const std::string header = "X-Mailcanary-Token: mc1.a.b\r\n\r\n";
    const std::string bytes =
        "* 3 FETCH (UID 41 INTERNALDATE \"29-Nov-2026 09:00:01 +0000\" "
        "BODY[HEADER.FIELDS (X-MAILCANARY-TOKEN)] {" +
        std::to_string(header.size()) + "}\r\n" + header + ")\r\n";
    ResponseReader reader;
    // Every split point: a literal cut anywhere must wait for the rest.
    for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
        reader.feed(bytes.substr(i, 1));
        ASSERT_FALSE(reader.next().has_value()) << "complete after " << i + 1 << " bytes";
    }
    reader.feed(bytes.substr(bytes.size() - 1));
    const auto response = reader.next();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->name, "FETCH");
    EXPECT_EQ(response->number, 3u);
    ASSERT_EQ(response->data.size(), 1u);
    const auto& items = response->data[0].items;
    ASSERT_EQ(items.size(), 6u);
    EXPECT_TRUE(items[0].is_atom("UID"));
    EXPECT_EQ(items[1].number(), 41u);
    EXPECT_EQ(items[3].kind, Value::Kind::string);
    EXPECT_EQ(items[3].text, "29-Nov-2026 09:00:01 +0000");
    EXPECT_EQ(items[4].text, "BODY[HEADER.FIELDS (X-MAILCANARY-TOKEN)]");
    EXPECT_EQ(items[5].text, header);
}

TEST(ImapResponseReader, ListSearchQuotedAndNil) {
    const auto responses = read_all(
        "* LIST (\\HasNoChildren \\Junk) \"/\" \"Spam \\\"box\\\"\"\r\n"
        "* SEARCH 4 9 12\r\n"
        "* LIST (\\Noselect) NIL \"\"\r\n");
    ASSERT_EQ(responses.size(), 3u);
    ASSERT_EQ(responses[0].data.size(), 3u);
    EXPECT_EQ(responses[0].data[0].items[1].text, "\\Junk");
    EXPECT_EQ(responses[0].data[2].text, "Spam \"box\"");
    ASSERT_EQ(responses[1].data.size(), 3u);
    EXPECT_EQ(responses[1].data[2].number(), 12u);
    EXPECT_EQ(responses[2].data[1].kind, Value::Kind::nil);
}

TEST(ImapResponseReader, BoundsLinesAndLiterals) {
    ResponseReader endless;
    endless.feed("* OK " + std::string(ResponseReader::kMaxLineBytes + 1, 'x'));
    EXPECT_FALSE(endless.next().has_value());
    EXPECT_NE(endless.error(), "");

    // Refused when announced, synchronising or not (LITERAL+), before a byte of it comes.
    for (const std::string_view size : {"999999999999", "5368709120", "5368709120+"}) {
        ResponseReader huge_literal;
        huge_literal.feed("* 1 FETCH (BODY[] {" + std::string(size) + "}\r\n");
        EXPECT_FALSE(huge_literal.next().has_value());
        EXPECT_EQ(huge_literal.error(),
                  "a literal of " + std::string(size.substr(0, size.find('+'))) + " bytes");
    }
}

// Feeds `chunk` again and again (as reads of a flood come in), taking every response, until the
// reader refuses the stream or `limit` bytes went in, with release() every `release_every`
// responses (0: never). Asserts after every read that the reader holds no more than its cap.
// The bytes fed when it stopped.
std::size_t flood(ResponseReader& reader, const std::string& chunk, std::size_t limit,
                  std::size_t release_every = 0) {
    std::size_t fed = 0;
    std::size_t responses = 0;
    while (fed < limit && reader.error().empty()) {
        reader.feed(chunk);
        fed += chunk.size();
        while (reader.next()) {
            if (release_every != 0 && ++responses % release_every == 0) reader.release();
        }
        EXPECT_LE(reader.held(), ResponseReader::kMaxHeldBytes);
        if (reader.held() > ResponseReader::kMaxHeldBytes) break;
    }
    return fed;
}

std::string repeated(std::string_view line, std::size_t times) {
    std::string out;
    for (std::size_t i = 0; i < times; ++i) out += line;
    return out;
}

// The cap on what one session holds (kMaxHeldBytes): a flood of responses nobody releases is
// refused once it would hold more, whether of tiny responses (which count for what they take
// parsed), many small items or long lines; the same stream is fine when its commands complete.
TEST(ImapResponseReader, AnUntaggedFloodNeverHoldsMoreThanTheCap) {
    const std::string floods[] = {repeated("* 1 EXISTS\r\n", 1365),
                                  "* SEARCH " + repeated("1 ", 4000) + "1\r\n",
                                  "* OK " + std::string(std::size_t{60} * 1024, 'x') + "\r\n"};
    for (const std::string& chunk : floods) {
        SCOPED_TRACE(chunk.substr(0, 12));
        ResponseReader unreleased;
        const std::size_t fed = flood(unreleased, chunk, 64 * ResponseReader::kMaxHeldBytes);
        EXPECT_EQ(unreleased.error(),
                  "more than 16777216 bytes of responses to one command (an untagged flood)");
        EXPECT_LE(fed, ResponseReader::kMaxHeldBytes + chunk.size());

        ResponseReader released;  // a command completes every 10 responses
        flood(released, chunk, 2 * fed, 10);
        EXPECT_EQ(released.error(), "");
    }
}

// Each literal within its cap, but together more than one response may hold: an error, so the
// buffer stops growing there.
TEST(ImapResponseReader, BoundsAResponseOfManyLiterals) {
    const std::string literal = "{" + std::to_string(ResponseReader::kMaxLiteralBytes) + "}\r\n" +
                                std::string(ResponseReader::kMaxLiteralBytes, 'x');
    ResponseReader reader;
    reader.feed("* 1 FETCH (BODY[1] ");
    for (std::size_t part = 2; part * ResponseReader::kMaxLiteralBytes <=
                               ResponseReader::kMaxResponseBytes + ResponseReader::kMaxLiteralBytes;
         ++part) {
        reader.feed(literal + " BODY[" + std::to_string(part) + "] ");
    }
    reader.feed(literal + ")\r\n");
    EXPECT_FALSE(reader.next().has_value());
    EXPECT_EQ(reader.error(), "a response larger than " +
                                  std::to_string(ResponseReader::kMaxResponseBytes) + " bytes");
}

// Found by the imap_response fuzzer's properties (tests/fuzz/regressions/imap_response/).
TEST(ImapResponseReader, AnEmptyLineIsAnErrorNotACompletionWithoutATag) {
    for (const std::string_view line : {"\r\n", "   \r\n"}) {
        ResponseReader reader;
        reader.feed(line);
        EXPECT_FALSE(reader.next().has_value());
        EXPECT_EQ(reader.error(), "a response line without a tag");
    }
}

TEST(ImapQuoted, EscapesOrRefuses) {
    EXPECT_EQ(quoted("pa\"ss\\w"), "\"pa\\\"ss\\\\w\"");
    EXPECT_FALSE(quoted("line\r\nbreak").has_value());
    EXPECT_FALSE(quoted("caf\xc3\xa9").has_value());
}

// Drives a client like the session driver would, recording what it writes.
class Conversation {
  public:
    explicit Conversation(ClientOptions options) : client_(std::move(options), transcript_) {}

    Action start() { return last_ = client_.start(); }
    // The server speaks; returns the client's next action, and completes writes on its behalf.
    Action server(std::string_view bytes) {
        last_ = client_.on_bytes(bytes);
        return settle();
    }
    Action tls_established() {
        last_ = client_.on_tls_established();
        return settle();
    }
    Action command(std::string_view text) {
        last_ = client_.command(text);
        return settle();
    }
    Action idle() {
        last_ = client_.idle();
        return settle();
    }
    Action stop_idling() {
        last_ = client_.stop_idling();
        return settle();
    }
    Action closed() { return last_ = client_.on_closed(); }

    // Everything the client wrote since the last call.
    std::string written() { return std::exchange(written_, {}); }
    Client& client() { return client_; }
    Transcript& transcript() { return transcript_; }

  private:
    Action settle() {
        while (last_.kind == Kind::write) {
            written_ += std::string(last_.bytes);
            last_ = client_.on_written();
        }
        return last_;
    }

    Transcript transcript_;
    Client client_;
    Action last_;
    std::string written_;
};

ClientOptions password_options(TlsMode tls, std::string password = "s3cret") {
    ClientOptions options;
    options.tls = tls;
    options.credentials.username = "probe@example.test";
    options.credentials.secret = std::move(password);
    return options;
}

constexpr std::string_view kDovecotGreeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
    "AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready.\r\n";

TEST(ImapClient, ImplicitTlsThenLoginWithCapabilitiesInTheOk) {
    Conversation c(password_options(TlsMode::implicit));
    EXPECT_EQ(c.start().kind, Kind::start_tls);
    EXPECT_EQ(c.tls_established().kind, Kind::read);
    EXPECT_EQ(c.server(kDovecotGreeting).kind, Kind::read);
    EXPECT_EQ(c.written(), "C1 LOGIN \"probe@example.test\" \"s3cret\"\r\n");
    EXPECT_EQ(
        c.server("C1 OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS MOVE SPECIAL-USE] Logged in\r\n").kind,
        Kind::ready);
    EXPECT_TRUE(c.client().has_capability("uidplus"));
    EXPECT_FALSE(c.client().has_capability("STARTTLS"));
    // The password never reaches the transcript.
    EXPECT_EQ(c.transcript().to_text().find("s3cret"), std::string::npos);
}

TEST(ImapClient, StartTlsAsksForCapabilitiesAgainAndRefusesInjectedBytes) {
    Conversation c(password_options(TlsMode::starttls));
    EXPECT_EQ(c.start().kind, Kind::read);
    c.server(kDovecotGreeting);
    EXPECT_EQ(c.written(), "C1 STARTTLS\r\n");
    EXPECT_EQ(c.server("C1 OK Begin TLS negotiation now.\r\n").kind, Kind::start_tls);
    EXPECT_EQ(c.tls_established().kind, Kind::read);
    EXPECT_EQ(c.written(), "C2 CAPABILITY\r\n");
    c.server("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\nC2 OK done\r\n");
    EXPECT_EQ(c.written(), "C3 LOGIN \"probe@example.test\" \"s3cret\"\r\n");
    EXPECT_EQ(c.server("C3 OK Logged in\r\n").kind, Kind::read);
    EXPECT_EQ(c.written(), "C4 CAPABILITY\r\n");
    EXPECT_EQ(c.server("* CAPABILITY IMAP4rev1 IDLE\r\nC4 OK done\r\n").kind, Kind::ready);
    EXPECT_TRUE(c.client().has_capability("IDLE"));

    Conversation injected(password_options(TlsMode::starttls));
    injected.start();
    injected.server(kDovecotGreeting);
    EXPECT_EQ(injected.server("C1 OK Begin TLS\r\nC2 OK [CAPABILITY IMAP4rev1] fake\r\n").kind,
              Kind::failed);
    EXPECT_EQ(injected.client().failure()->reason, FailureReason::protocol);
}

TEST(ImapClient, StartTlsMissingIsStartTlsUnavailable) {
    Conversation c(password_options(TlsMode::starttls));
    c.start();
    EXPECT_EQ(c.server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n").kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::starttls_unavailable);
    EXPECT_EQ(c.written(), "");
}

TEST(ImapClient, NoCredentialsInTheClearUnlessAllowed) {
    Conversation refused(password_options(TlsMode::none));
    refused.start();
    EXPECT_EQ(refused.server(kDovecotGreeting).kind, Kind::failed);
    EXPECT_EQ(refused.client().failure()->reason, FailureReason::auth_insecure);
    EXPECT_EQ(refused.written(), "");

    auto options = password_options(TlsMode::none);
    options.allow_plaintext = true;
    Conversation allowed(options);
    allowed.start();
    allowed.server(kDovecotGreeting);
    EXPECT_EQ(allowed.written(), "C1 LOGIN \"probe@example.test\" \"s3cret\"\r\n");
}

TEST(ImapClient, GreetingWithoutCapabilitiesAsksForThem) {
    Conversation c(password_options(TlsMode::implicit));
    c.start();
    c.tls_established();
    c.server("* OK ready\r\n");
    EXPECT_EQ(c.written(), "C1 CAPABILITY\r\n");
    c.server("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nC1 OK\r\n");
    EXPECT_EQ(c.written(), "C2 LOGIN \"probe@example.test\" \"s3cret\"\r\n");
}

// RFC 4616 as RFC 4959 carries it: base64 of authzid NUL authcid NUL passwd, once.
std::string plain_initial_response(std::string_view password) {
    return sasl::base64_encode(std::string("\0probe@example.test\0", 20) + std::string(password));
}

TEST(ImapClient, LoginDisabledOrUnquotablePasswordUsesAuthenticatePlain) {
    const std::string expected_response = plain_initial_response("caf\xc3\xa9");
    Conversation with_ir(password_options(TlsMode::implicit, "caf\xc3\xa9"));
    with_ir.start();
    with_ir.tls_established();
    with_ir.server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] hi\r\n");
    EXPECT_EQ(with_ir.written(), "C1 AUTHENTICATE PLAIN " + expected_response + "\r\n");
    EXPECT_EQ(with_ir.transcript().to_text().find(expected_response), std::string::npos)
        << "the initial response is the password: " << with_ir.transcript().to_text();

    Conversation without_ir(password_options(TlsMode::implicit));
    without_ir.start();
    without_ir.tls_established();
    without_ir.server("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n");
    EXPECT_EQ(without_ir.written(), "C1 AUTHENTICATE PLAIN\r\n");
    EXPECT_EQ(without_ir.server("+ \r\n").kind, Kind::read);
    EXPECT_EQ(without_ir.written(), plain_initial_response("s3cret") + "\r\n");
    EXPECT_EQ(without_ir.server("C1 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n").kind, Kind::ready);
    EXPECT_EQ(without_ir.transcript().to_text().find("s3cret"), std::string::npos);
}

TEST(ImapClient, RejectedLoginIsAnAuthFailureWithTheServersWords) {
    Conversation c(password_options(TlsMode::implicit));
    c.start();
    c.tls_established();
    c.server(kDovecotGreeting);
    c.written();
    EXPECT_EQ(c.server("C1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n").kind,
              Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::auth_rejected);
    EXPECT_EQ(c.client().failure()->detail,
              "login: NO [AUTHENTICATIONFAILED] Authentication failed.");
}

// Gmail and Microsoft (support/provider_transcripts.hpp): implicit TLS, a greeting without
// capabilities, CAPABILITY, LOGIN, and the server's refusal.
FailureReason provider_login_refused(const std::string& greeting, const std::string& capability,
                                     const std::string& refusal) {
    Conversation c(password_options(TlsMode::implicit));
    c.start();
    c.tls_established();
    c.server(greeting);
    EXPECT_EQ(c.written(), "C1 CAPABILITY\r\n");
    c.server(capability + "C1 OK CAPABILITY completed.\r\n");
    EXPECT_EQ(c.written(), "C2 LOGIN \"probe@example.test\" \"s3cret\"\r\n");
    EXPECT_EQ(c.server("C2 " + refusal).kind, Kind::failed);
    return c.client().failure() ? c.client().failure()->reason : FailureReason::protocol;
}

TEST(ImapClient, ProvidersLoginRefusalsByPolicyAreNotWrongPasswords) {
    namespace p = test::providers;
    const auto gmail = [](const std::string& refusal) {
        return to_string(
            provider_login_refused(p::kGmailImapGreeting, p::kGmailImapCapability, refusal));
    };
    const auto microsoft = [](const std::string& refusal) {
        return to_string(provider_login_refused(p::kMicrosoftImapGreeting,
                                                p::kMicrosoftImapCapability, refusal));
    };
    EXPECT_EQ(gmail(p::kGmailImapAppPasswordRequired), "auth_disabled");
    EXPECT_EQ(gmail(p::kGmailImapWebLoginRequired), "auth_disabled");
    EXPECT_EQ(gmail(p::kGmailImapWrongPassword), "auth_rejected");
    EXPECT_EQ(microsoft(p::kMicrosoftImapBasicAuthDisabled), "auth_disabled");
    // Exchange says the same for a wrong password and for IMAP turned off: it cannot be told.
    EXPECT_EQ(microsoft(p::kMicrosoftImapLoginFailed), "auth_rejected");
}

// Throttled logins are neither refused credentials nor an outage: the providers' words and RFC
// 5530's codes for limits (sources in support/provider_transcripts.hpp and
// tests/unit/imap_throttling_test.cpp).
TEST(ImapClient, ThrottledLoginsAreNotRefusedCredentials) {
    namespace p = test::providers;
    const auto gmail = [](const std::string& refusal) {
        return to_string(
            provider_login_refused(p::kGmailImapGreeting, p::kGmailImapCapability, refusal));
    };
    const auto microsoft = [](const std::string& refusal) {
        return to_string(provider_login_refused(p::kMicrosoftImapGreeting,
                                                p::kMicrosoftImapCapability, refusal));
    };
    EXPECT_EQ(gmail(p::kGmailImapTooManyConnections), "throttled");
    EXPECT_EQ(gmail(p::kGmailImapOverQuota), "throttled");
    EXPECT_EQ(microsoft(p::kMicrosoftImapThrottled), "throttled");
    EXPECT_EQ(microsoft("NO [LIMIT] Maximum number of connections exceeded\r\n"), "throttled");
    // A subsystem down (RFC 5530: "the authentication backend", say) is no limit on the client.
    EXPECT_EQ(microsoft("NO [UNAVAILABLE] Internal error\r\n"), "auth_tempfail");

    Conversation c(password_options(TlsMode::implicit));
    c.start();
    c.tls_established();
    c.server(p::kMicrosoftImapGreeting);
    c.server(p::kMicrosoftImapCapability + "C1 OK CAPABILITY completed.\r\n");
    c.written();
    EXPECT_EQ(c.server("C2 " + p::kMicrosoftImapThrottled).kind, Kind::failed);
    ASSERT_TRUE(c.client().failure());
    EXPECT_EQ(c.client().failure()->backoff_hint, std::chrono::milliseconds(299910));
    EXPECT_EQ(c.client().failure()->detail,
              "LOGIN: NO Request is throttled. Suggested Backoff Time: 299910 milliseconds");
}

TEST(ImapClient, Xoauth2ErrorChallengeGetsAnEmptyAnswer) {
    auto options = password_options(TlsMode::implicit, "ya29.token");
    options.credentials.secret_is_token = true;
    Conversation c(options);
    c.start();
    c.tls_established();
    c.server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] hi\r\n");
    // Google's format, base64-encoded once.
    const std::string initial = sasl::base64_encode(
        "user=probe@example.test\x01"
        "auth=Bearer ya29.token\x01\x01");
    EXPECT_EQ(c.written(), "C1 AUTHENTICATE XOAUTH2 " + initial + "\r\n");
    EXPECT_EQ(c.transcript().to_text().find(initial), std::string::npos)
        << c.transcript().to_text();
    c.server("+ " + sasl::base64_encode("{\"status\":\"401\"}") + "\r\n");
    EXPECT_EQ(c.written(), "\r\n");
    EXPECT_EQ(c.server("C1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n").kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::auth_rejected);
}

TEST(ImapClient, ByeGreetingAndPreauth) {
    Conversation refused(password_options(TlsMode::implicit));
    refused.start();
    refused.tls_established();
    EXPECT_EQ(refused.server("* BYE Too many connections\r\n").kind, Kind::failed);
    EXPECT_EQ(refused.client().failure()->reason, FailureReason::greeting_rejected);

    Conversation limited(password_options(TlsMode::implicit));
    limited.start();
    limited.tls_established();
    EXPECT_EQ(limited.server("* BYE [LIMIT] Too many connections from your address\r\n").kind,
              Kind::failed);
    EXPECT_EQ(limited.client().failure()->reason, FailureReason::throttled);

    Conversation preauth(password_options(TlsMode::implicit));
    preauth.start();
    preauth.tls_established();
    EXPECT_EQ(preauth.server("* PREAUTH [CAPABILITY IMAP4rev1 IDLE] welcome\r\n").kind,
              Kind::ready);
    EXPECT_EQ(preauth.written(), "");
}

// A logged-in client, for the command tests.
Conversation logged_in() {
    Conversation c(password_options(TlsMode::implicit));
    c.start();
    c.tls_established();
    c.server(kDovecotGreeting);
    c.server("C1 OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] Logged in\r\n");
    c.written();
    return c;
}

TEST(ImapClient, CommandCollectsUntaggedDataIncludingUnsolicited) {
    Conversation c = logged_in();
    EXPECT_EQ(c.command("UID SEARCH HEADER X-Mailcanary-Token \"mc1.\"").kind, Kind::read);
    EXPECT_EQ(c.written(), "C2 UID SEARCH HEADER X-Mailcanary-Token \"mc1.\"\r\n");
    // An EXISTS in the middle of another command's reply is normal IMAP.
    EXPECT_EQ(c.server("* 5 EXISTS\r\n* SEARCH 7").kind, Kind::read);
    EXPECT_EQ(c.server(" 9\r\nC2 OK Search completed (0.001 + 0.000 secs).\r\n").kind,
              Kind::completed);
    const Completion& done = c.client().completion();
    EXPECT_TRUE(done.ok());
    ASSERT_EQ(done.untagged.size(), 2u);
    EXPECT_EQ(done.untagged[1].name, "SEARCH");
    EXPECT_EQ(done.untagged[1].data.size(), 2u);
    EXPECT_TRUE(c.client().take_mailbox_changed());
    EXPECT_FALSE(c.client().take_mailbox_changed());
}

TEST(ImapClient, NoAndBadAreCompletionsNotSessionFailures) {
    Conversation c = logged_in();
    c.command("SELECT \"Missing\"");
    EXPECT_EQ(c.written(), "C2 SELECT \"Missing\"\r\n");
    EXPECT_EQ(c.server("C2 NO [NONEXISTENT] Mailbox doesn't exist: Missing\r\n").kind,
              Kind::completed);
    EXPECT_EQ(c.client().completion().describe(),
              "NO [NONEXISTENT] Mailbox doesn't exist: Missing");
    EXPECT_EQ(c.command("NOOP").kind, Kind::read);
    EXPECT_EQ(c.written(), "C3 NOOP\r\n");
    EXPECT_EQ(c.server("C3 OK NOOP completed.\r\n").kind, Kind::completed);
}

// Throttled at a later command, the session is over with the reason and the server's hint; a
// full mailbox (OVERQUOTA to COPY) stays the command's answer.
TEST(ImapClient, AThrottledCommandEndsTheSession) {
    namespace p = test::providers;
    Conversation gmail = logged_in();
    gmail.command("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token)])");
    EXPECT_EQ(gmail.server("C2 " + p::kGmailImapOverQuota).kind, Kind::failed);
    EXPECT_EQ(gmail.client().failure()->reason, FailureReason::throttled);
    EXPECT_FALSE(gmail.client().failure()->backoff_hint);

    Conversation microsoft = logged_in();
    microsoft.command("SELECT \"INBOX\"");
    EXPECT_EQ(microsoft.server("C2 " + p::kMicrosoftImapThrottledBye).kind, Kind::failed);
    EXPECT_EQ(microsoft.client().failure()->reason, FailureReason::throttled);
    EXPECT_EQ(microsoft.client().failure()->backoff_hint, std::chrono::milliseconds(89117));

    Conversation full = logged_in();
    full.command("UID COPY 5 \"Trash\"");
    EXPECT_EQ(full.server("C2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n").kind,
              Kind::completed);
    EXPECT_FALSE(full.client().completion().ok());

    // A BYE that says why, then the end of the connection.
    Conversation bye = logged_in();
    bye.idle();
    bye.server("+ idling\r\n");
    bye.server("* BYE [LIMIT] Too many simultaneous connections\r\n");
    EXPECT_EQ(bye.closed().kind, Kind::failed);
    EXPECT_EQ(bye.client().failure()->reason, FailureReason::throttled);
}

TEST(ImapClient, IdleUntilNewMailThenDone) {
    Conversation c = logged_in();
    EXPECT_EQ(c.idle().kind, Kind::read);
    EXPECT_EQ(c.written(), "C2 IDLE\r\n");
    EXPECT_EQ(c.server("+ idling\r\n").kind, Kind::idling);
    EXPECT_FALSE(c.client().take_mailbox_changed());
    EXPECT_EQ(c.server("* OK Still here\r\n").kind, Kind::idling);
    EXPECT_EQ(c.server("* 4 EXISTS\r\n* 1 RECENT\r\n").kind, Kind::idling);
    EXPECT_TRUE(c.client().take_mailbox_changed());
    EXPECT_EQ(c.stop_idling().kind, Kind::read);
    EXPECT_EQ(c.written(), "DONE\r\n");
    EXPECT_EQ(c.server("C2 OK Idle completed (0.5 + 0.5 secs).\r\n").kind, Kind::completed);
    EXPECT_TRUE(c.client().ready());
}

// RFC 9051 7.1.5: BYE says the server is closing the connection; the session ends with it, in
// IDLE or not, without waiting for a close that a hostile server never makes.
TEST(ImapClient, ByeDuringIdleEndsTheSessionWithTheServersWords) {
    Conversation c = logged_in();
    c.idle();
    c.server("+ idling\r\n");
    EXPECT_EQ(c.server("* BYE Server shutting down.\r\n").kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::closed);
    EXPECT_EQ(c.client().failure()->detail, "the server said BYE Server shutting down.");
    EXPECT_EQ(c.closed().kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::closed);
}

// LOGOUT's BYE comes before its completion, which is still waited for.
TEST(ImapClient, LogoutsByeIsNotTheEndOfTheSession) {
    Conversation c = logged_in();
    c.command("LOGOUT");
    EXPECT_EQ(c.server("* BYE Logging out\r\n").kind, Kind::read);
    EXPECT_EQ(c.server("C2 OK Logout completed.\r\n").kind, Kind::completed);
    EXPECT_TRUE(c.client().completion().ok());
}

// A BYE and a completion in one read: the completion is still the command's answer.
TEST(ImapClient, ByeWithACompletionInTheSameReadKeepsTheCompletion) {
    Conversation c = logged_in();
    c.command("NOOP");
    EXPECT_EQ(c.server("* BYE Autologout; idle for too long\r\nC2 OK NOOP completed.\r\n").kind,
              Kind::completed);
    EXPECT_TRUE(c.client().completion().ok());
}

TEST(ImapClient, DisconnectBeforeGreetingIsClosed) {
    Conversation c(password_options(TlsMode::none));
    c.start();
    EXPECT_EQ(c.closed().kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::closed);
}

TEST(ImapClient, ForeignTagsAndGarbageAreProtocolFailures) {
    Conversation foreign = logged_in();
    foreign.command("NOOP");
    EXPECT_EQ(foreign.server("C9 OK what?\r\n").kind, Kind::failed);
    EXPECT_EQ(foreign.client().failure()->reason, FailureReason::protocol);

    Conversation garbage(password_options(TlsMode::none));
    garbage.start();
    EXPECT_EQ(garbage.server("220 mail.example.test ESMTP\r\n").kind, Kind::failed);
    EXPECT_EQ(garbage.client().failure()->reason, FailureReason::protocol);
}

TEST(ImapClient, LoginFailuresSayWhetherToRetry) {
    Conversation tempfail(password_options(TlsMode::implicit));
    tempfail.start();
    tempfail.tls_established();
    tempfail.server(kDovecotGreeting);
    // RFC 5530: the authentication service is down, the credentials may be fine.
    EXPECT_EQ(tempfail.server("C1 NO [UNAVAILABLE] Temporary authentication failure\r\n").kind,
              Kind::failed);
    EXPECT_EQ(tempfail.client().failure()->reason, FailureReason::auth_tempfail);

    Conversation bad(password_options(TlsMode::implicit));
    bad.start();
    bad.tls_established();
    bad.server(kDovecotGreeting);
    EXPECT_EQ(bad.server("C1 BAD Invalid arguments\r\n").kind, Kind::failed);
    EXPECT_EQ(bad.client().failure()->reason, FailureReason::auth_rejected);
}

TEST(ImapClient, RefusedStartTlsIsStartTlsRejected) {
    Conversation c(password_options(TlsMode::starttls));
    c.start();
    c.server(kDovecotGreeting);
    EXPECT_EQ(c.written(), "C1 STARTTLS\r\n");
    EXPECT_EQ(c.server("C1 NO [UNAVAILABLE] TLS is not configured\r\n").kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::starttls_rejected);
    EXPECT_EQ(c.client().failure()->detail, "STARTTLS: NO [UNAVAILABLE] TLS is not configured");
}

TEST(ImapClient, NoUsableMechanismSendsNothing) {
    // LOGIN disabled and no AUTHENTICATE mechanism for a password.
    Conversation disabled(password_options(TlsMode::implicit));
    disabled.start();
    disabled.tls_established();
    EXPECT_EQ(disabled.server("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=XOAUTH2] hi\r\n").kind,
              Kind::failed);
    EXPECT_EQ(disabled.client().failure()->reason, FailureReason::auth_unavailable);
    EXPECT_EQ(disabled.client().failure()->detail,
              "LOGIN is disabled and server offers AUTH XOAUTH2, not a password mechanism");
    EXPECT_EQ(disabled.written(), "");

    // LOGIN asked for by name, but disabled.
    auto options = password_options(TlsMode::implicit);
    options.credentials.mechanism = sasl::Mechanism::login;
    Conversation named(options);
    named.start();
    named.tls_established();
    EXPECT_EQ(named.server("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n").kind,
              Kind::failed);
    EXPECT_EQ(named.client().failure()->reason, FailureReason::auth_unavailable);
    EXPECT_EQ(named.written(), "");

    // A mechanism asked for by name that the server does not offer.
    options.credentials.mechanism = sasl::Mechanism::cram_md5;
    Conversation missing(options);
    missing.start();
    missing.tls_established();
    EXPECT_EQ(missing.server(kDovecotGreeting).kind, Kind::failed);
    EXPECT_EQ(missing.client().failure()->reason, FailureReason::auth_unavailable);
    EXPECT_EQ(missing.client().failure()->detail, "server offers AUTH PLAIN LOGIN, not CRAM-MD5");
}

// The mechanism is chosen as for SMTP AUTH, and runs through the same exchange.
TEST(ImapClient, AuthenticateChoosesAndRunsMechanismsAsSmtpDoes) {
    auto token = password_options(TlsMode::implicit, "ya29.token");
    token.credentials.secret_is_token = true;
    token.credentials.host = "imap.example.test";
    token.credentials.port = 993;
    Conversation oauth(token);
    oauth.start();
    oauth.tls_established();
    oauth.server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] hi\r\n");
    EXPECT_EQ(oauth.written(),
              "C1 AUTHENTICATE OAUTHBEARER " +
                  sasl::oauthbearer_response("probe@example.test", "imap.example.test", 993,
                                             "ya29.token") +
                  "\r\n");
    // RFC 7628 3.2.3: the error challenge is answered with ^A, then the server says NO.
    EXPECT_EQ(
        oauth.server("+ " + sasl::base64_encode("{\"status\":\"invalid_token\"}") + "\r\n").kind,
        Kind::read);
    EXPECT_EQ(oauth.written(), sasl::base64_encode("\x01") + "\r\n");
    EXPECT_NE(oauth.transcript().to_text().find("invalid_token"), std::string::npos);
    EXPECT_EQ(oauth.transcript().to_text().find(sasl::oauthbearer_response(
                  "probe@example.test", "imap.example.test", 993, "ya29.token")),
              std::string::npos)
        << oauth.transcript().to_text();

    // LOGIN disabled: the strongest password mechanism offered, CRAM-MD5, challenge and all.
    const std::string challenge = "<1896.697170952@postoffice.reston.mci.net>";
    Conversation cram(password_options(TlsMode::implicit));
    cram.start();
    cram.tls_established();
    cram.server("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN AUTH=CRAM-MD5] hi\r\n");
    EXPECT_EQ(cram.written(), "C1 AUTHENTICATE CRAM-MD5\r\n");
    cram.server("+ " + sasl::base64_encode(challenge) + "\r\n");
    EXPECT_EQ(cram.written(),
              sasl::cram_md5_response("probe@example.test", "s3cret", challenge) + "\r\n");
    EXPECT_EQ(cram.server("C1 OK [CAPABILITY IMAP4rev1] in\r\n").kind, Kind::ready);
    EXPECT_EQ(cram.transcript().to_text().find(
                  sasl::cram_md5_response("probe@example.test", "s3cret", challenge)),
              std::string::npos);

    // A challenge the mechanism has no answer for breaks the protocol.
    Conversation extra(password_options(TlsMode::implicit, "caf\xc3\xa9"));
    extra.start();
    extra.tls_established();
    extra.server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] hi\r\n");
    extra.written();
    EXPECT_EQ(extra.server("+ more?\r\n").kind, Kind::failed);
    EXPECT_EQ(extra.client().failure()->reason, FailureReason::protocol);
}

TEST(ImapClient, PhasesFollowTheLoginSequence) {
    Conversation c(password_options(TlsMode::starttls));
    c.start();
    EXPECT_EQ(c.client().phase(), Phase::greeting);
    c.server("* OK IMAP4rev1 ready\r\n");
    EXPECT_EQ(c.client().phase(), Phase::capability);
    c.server("* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\nC1 OK\r\n");
    EXPECT_EQ(c.client().phase(), Phase::starttls);
    c.server("C2 OK go\r\n");
    EXPECT_EQ(c.client().phase(), Phase::tls_handshake);
    c.tls_established();
    EXPECT_EQ(c.client().phase(), Phase::capability);
    c.server("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nC3 OK\r\n");
    EXPECT_EQ(c.client().phase(), Phase::auth);
    EXPECT_EQ(c.server("C4 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n").kind, Kind::ready);
    EXPECT_EQ(c.client().phase(), std::nullopt);
    c.command("SELECT INBOX");
    EXPECT_EQ(c.client().phase(), std::nullopt) << "the caller names its commands' phases";

    Conversation implicit(password_options(TlsMode::implicit));
    implicit.start();
    EXPECT_EQ(implicit.client().phase(), Phase::tls_handshake);
}

TEST(ImapClient, PreauthWithoutTheTlsAskedForIsStartTlsUnavailable) {
    Conversation c(password_options(TlsMode::starttls));
    c.start();
    EXPECT_EQ(c.server("* PREAUTH [CAPABILITY IMAP4rev1] welcome\r\n").kind, Kind::failed);
    EXPECT_EQ(c.client().failure()->reason, FailureReason::starttls_unavailable);
}

}  // namespace
}  // namespace mailcanary::imap
