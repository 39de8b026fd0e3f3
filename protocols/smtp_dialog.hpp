// The SMTP client dialog of the SMTP probes (connect, auth, accept and the round trip's sending)
// as a state machine without I/O: it consumes what the server sends and says what to do next.
// A driver (smtp_session) performs the actions.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"
#include "protocols/sasl.hpp"
#include "protocols/smtp_reply.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary::smtp {

struct Action {
    enum class Kind {
        read,       // read more bytes, then call on_bytes (or on_closed at end of stream)
        buffered,   // the server's next reply may be buffered already: call on_bytes({})
        write,      // write `bytes`, then call on_written
        start_tls,  // perform the TLS client handshake, then call on_tls_established
        done,       // close the connection; outcome() is final
    };
    Kind kind = Kind::done;
    Phase phase = Phase::banner;  // the phase the action belongs to, for timing
    std::string_view bytes;       // for write; valid until the next call into the dialog
};

// A reply code as seen for a command, for mailcanary_smtp_replies_total{command,code}.
struct ReplyRecord {
    // "banner", "ehlo", "helo", "starttls", "auth", "mail", "rcpt", "data", "data_end", "rset",
    // "quit"
    std::string_view command;
    int code = 0;
    bool operator==(const ReplyRecord&) const = default;
};

// Log in after EHLO (RFC 4954). The secret never reaches the transcript.
struct AuthRequest {
    std::optional<sasl::Mechanism> mechanism;  // none: the strongest the server offers
    std::string username;
    std::string secret;  // the password, or the OAuth2 access token
    bool secret_is_token = false;
    bool allow_plaintext = false;  // send credentials without TLS
    std::string host;              // for OAUTHBEARER's host and port fields
    unsigned port = 0;
};

// Submit a message after EHLO (and AUTH): MAIL FROM, RCPT TO, DATA. With PIPELINING, MAIL and
// the RCPTs go in one write, and DATA only once every RCPT was accepted: a refused recipient
// must not leave a message behind for the others.
struct TransactionRequest {
    std::string from;
    std::vector<std::string> to;
    std::string message;     // as composed by compose_message: dot-stuffed, ending in CRLF.CRLF
    bool rcpt_only = false;  // mode = "rcpt": RSET after RCPT TO, no DATA
};

struct DialogOptions {
    TlsMode tls = TlsMode::none;
    std::string helo;
    std::optional<AuthRequest> auth;
    std::optional<TransactionRequest> transaction;
};

class Dialog {
  public:
    Dialog(DialogOptions options, Transcript& transcript);

    Action start();
    Action on_bytes(std::string_view received);
    Action on_written();
    Action on_tls_established();
    Action on_closed();

    // Set once the dialog failed; a failure is final even if a polite QUIT follows it.
    std::optional<FailureReason> failure() const { return failure_; }
    const std::string& failure_detail() const { return failure_detail_; }
    // The phase the dialog is in: where a timeout or I/O error happened, for the driver.
    Phase phase() const { return phase_; }
    bool finished() const { return state_ == State::finished; }
    // True once the server has greeted us and QUIT makes sense (for cancellation).
    bool can_quit() const;

    const std::vector<std::string>& capabilities() const { return capabilities_; }
    bool has_capability(std::string_view keyword) const { return capability(keyword).has_value(); }
    // The parameters of an EHLO capability ("10240000" for "SIZE 10240000"), if offered.
    std::optional<std::string_view> capability(std::string_view keyword) const;
    const std::vector<ReplyRecord>& replies() const { return replies_; }
    // True once the server answered the final dot with 250: the message is the server's now.
    bool message_accepted() const { return message_accepted_; }
    // The reply to the final dot, and the queue id it names, once the message was accepted.
    const std::optional<std::string>& queue_id() const { return queue_id_; }

  private:
    enum class State {
        implicit_tls,
        banner,
        ehlo,
        helo,
        starttls,
        upgrading,
        ehlo_after_tls,
        auth,
        transaction,  // MAIL, RCPT, DATA or RSET sent, replies awaited in order
        message,      // message and final dot sent, its reply awaited
        quit,
        finished,
    };

    // `shown` replaces the line in the transcript when it carries a secret.
    Action send(State next, Phase phase, std::string_view command_line,
                std::string_view shown = {});
    Action read() const { return {Action::Kind::read, phase_, {}}; }
    Action on_reply(const Reply& reply);
    Action after_ehlo();
    Action start_auth();
    Action on_auth_reply(const Reply& reply);
    Action after_auth();
    Action start_transaction();
    Action on_transaction_reply(const Reply& reply);
    Action on_message_reply(const Reply& reply);
    Action send_next_command();
    Action send_message();
    std::string_view command_answered() const;
    // A failure after which the session is still in step: say QUIT before closing.
    Action fail_and_quit(FailureReason reason, std::string detail);
    // A failure after which nothing the server says can be trusted: just close.
    Action fail_and_close(FailureReason reason, std::string detail);
    // A 4xx/5xx reply: QUIT, unless it was 421 (the server is closing the channel itself).
    Action rejected_by(FailureReason reason, const Reply& reply);
    void record_failure(FailureReason reason, std::string detail);
    Action finish();
    Action quit();
    void record_capabilities(const Reply& ehlo_reply);

    DialogOptions options_;
    Transcript& transcript_;
    ReplyParser parser_;
    State state_ = State::banner;
    Phase phase_ = Phase::banner;
    bool awaiting_write_ = false;
    bool tls_active_ = false;
    std::optional<sasl::Exchange> sasl_;  // from AUTH on

    enum class Command { mail, rcpt, data, rset };
    std::deque<Command> to_send_;   // without PIPELINING: the commands still to send, in order
    std::deque<Command> awaiting_;  // sent, reply not yet read
    std::size_t next_recipient_ = 0;
    bool message_accepted_ = false;
    std::optional<std::string> queue_id_;
    std::string command_line(Command command);
    static Phase phase_of(Command command);
    std::string out_;
    std::optional<FailureReason> failure_;
    std::string failure_detail_;
    std::vector<std::string> capabilities_;
    std::vector<ReplyRecord> replies_;
};

}  // namespace mailcanary::smtp
