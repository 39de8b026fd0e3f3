// The SMTP client dialog of the connect probe as a state machine without I/O: it consumes what
// the server sends and says what to do next. A driver (smtp_session) performs the actions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.hpp"
#include "probes/failure_reason.hpp"
#include "probes/phase.hpp"
#include "probes/smtp_reply.hpp"
#include "probes/transcript.hpp"

namespace mailcanary::smtp {

struct Action {
    enum class Kind {
        read,       // read more bytes, then call on_bytes (or on_closed at end of stream)
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
    std::string_view command;  // "banner", "ehlo", "helo", "starttls", "quit"
    int code = 0;
    bool operator==(const ReplyRecord&) const = default;
};

struct DialogOptions {
    TlsMode tls = TlsMode::none;
    std::string helo;
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
    bool has_capability(std::string_view keyword) const;
    const std::vector<ReplyRecord>& replies() const { return replies_; }

  private:
    enum class State {
        implicit_tls,
        banner,
        ehlo,
        helo,
        starttls,
        upgrading,
        ehlo_after_tls,
        quit,
        finished,
    };

    Action send(State next, Phase phase, std::string_view command_line);
    Action read() const { return {Action::Kind::read, phase_, {}}; }
    Action on_reply(const Reply& reply);
    std::string_view command_answered() const;
    Action fail(FailureReason reason, std::string detail, const Reply* reply = nullptr);
    Action finish();
    Action quit();
    void record_capabilities(const Reply& ehlo_reply);

    DialogOptions options_;
    Transcript& transcript_;
    ReplyParser parser_;
    State state_ = State::banner;
    Phase phase_ = Phase::banner;
    bool awaiting_write_ = false;
    std::string out_;
    std::optional<FailureReason> failure_;
    std::string failure_detail_;
    std::vector<std::string> capabilities_;
    std::vector<ReplyRecord> replies_;
};

}  // namespace mailcanary::smtp
