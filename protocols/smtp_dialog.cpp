#include "protocols/smtp_dialog.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "common/text.hpp"
#include "protocols/auth_refusal.hpp"
#include "protocols/smtp_queue_id.hpp"
#include "protocols/smtp_throttling.hpp"

namespace mailcanary::smtp {
namespace {

void log_reply(Transcript& transcript, const Reply& reply) {
    for (std::size_t i = 0; i < reply.lines.size(); ++i) {
        const char separator = i + 1 < reply.lines.size() ? '-' : ' ';
        transcript.server(std::to_string(reply.code) + separator + reply.lines[i]);
    }
}

bool is_rejection(const Reply& reply) { return reply.klass() == 4 || reply.klass() == 5; }

}  // namespace

Dialog::Dialog(DialogOptions options, Transcript& transcript)
    : options_(std::move(options)), transcript_(transcript) {}

Action Dialog::start() {
    if (options_.tls == TlsMode::implicit) {
        state_ = State::implicit_tls;
        phase_ = Phase::tls_handshake;
        return {Action::Kind::start_tls, phase_, {}};
    }
    state_ = State::banner;
    phase_ = Phase::banner;
    return read();
}

bool Dialog::can_quit() const {
    switch (state_) {
        case State::ehlo:
        case State::helo:
        case State::starttls:
        case State::ehlo_after_tls:
            return true;
        // In the middle of a SASL exchange, "QUIT" would be read as a SASL response.
        default:
            return false;
    }
}

std::optional<std::string_view> Dialog::capability(std::string_view keyword) const {
    for (const std::string& line : capabilities_) {
        const std::string_view view(line);
        const auto space = view.find(' ');
        if (iequals(view.substr(0, space), keyword)) {
            return space == std::string_view::npos ? std::string_view() : view.substr(space + 1);
        }
    }
    return std::nullopt;
}

Action Dialog::send(State next, Phase phase, std::string_view command_line,
                    std::string_view shown) {
    state_ = next;
    phase_ = phase;
    transcript_.client(shown.empty() ? command_line : shown);
    out_.assign(command_line);
    out_ += "\r\n";
    awaiting_write_ = true;
    return {Action::Kind::write, phase_, out_};
}

Action Dialog::on_written() {
    awaiting_write_ = false;
    return read();
}

Action Dialog::on_tls_established() {
    tls_active_ = true;
    if (state_ == State::implicit_tls) {
        state_ = State::banner;
        phase_ = Phase::banner;
        return read();
    }
    // RFC 3207: after the upgrade the client must forget what it knew and ask again.
    capabilities_.clear();
    return send(State::ehlo_after_tls, Phase::ehlo, "EHLO " + options_.helo);
}

Action Dialog::on_closed() {
    if (state_ == State::quit || failure_) return finish();
    return fail_and_close(FailureReason::closed,
                          "server closed the connection during " + std::string(to_string(phase_)));
}

Action Dialog::on_bytes(std::string_view received) {
    parser_.feed(received);
    switch (parser_.next()) {
        case ReplyParser::Status::need_more:
            return read();
        case ReplyParser::Status::error:
            return fail_and_close(FailureReason::protocol, parser_.error());
        case ReplyParser::Status::reply:
            break;
    }
    const Reply& reply = parser_.reply();
    log_reply(transcript_, reply);
    const Action next = on_reply(reply);
    if (parser_.buffered() == 0) return next;
    // With PIPELINING the replies to several commands may be here already. One reply per step,
    // so that the driver times each command's phase alike however the bytes arrived.
    if (next.kind == Action::Kind::read) return {Action::Kind::buffered, next.phase, {}};
    // Without PIPELINING a server speaks only when spoken to: more bytes here would be taken as
    // the answer to the next command and desynchronise the dialog.
    if (next.kind == Action::Kind::write) {
        return fail_and_close(FailureReason::protocol,
                              "server sent data before the client's next command");
    }
    return next;
}

std::string_view Dialog::command_answered() const {
    switch (state_) {
        case State::implicit_tls:
        case State::banner:
            return "banner";
        case State::ehlo:
        case State::ehlo_after_tls:
            return "ehlo";
        case State::helo:
            return "helo";
        case State::starttls:
        case State::upgrading:
            return "starttls";
        case State::auth:
            return "auth";
        case State::transaction:
            switch (awaiting_.empty() ? Command::rset : awaiting_.front()) {
                case Command::mail:
                    return "mail";
                case Command::rcpt:
                    return "rcpt";
                case Command::data:
                    return "data";
                case Command::rset:
                    return "rset";
            }
            return "unknown";
        case State::message:
            return "data_end";
        case State::quit:
        case State::finished:
            return "quit";
    }
    return "unknown";
}

Action Dialog::on_reply(const Reply& reply) {
    replies_.push_back({command_answered(), reply.code});

    switch (state_) {
        case State::banner:
            if (reply.code == 220) return send(State::ehlo, Phase::ehlo, "EHLO " + options_.helo);
            if (is_rejection(reply)) return rejected_by(FailureReason::banner_rejected, reply);
            break;

        case State::ehlo:
            if (reply.code == 250) {
                record_capabilities(reply);
                if (options_.tls != TlsMode::starttls) return after_ehlo();
                if (!has_capability("STARTTLS")) {
                    return fail_and_quit(FailureReason::starttls_unavailable,
                                         "STARTTLS is not among the EHLO capabilities");
                }
                return send(State::starttls, Phase::starttls, "STARTTLS");
            }
            // RFC 5321 4.1.4: a server that does not know EHLO answers 5xx; HELO may still work.
            if (reply.klass() == 5) return send(State::helo, Phase::ehlo, "HELO " + options_.helo);
            if (is_rejection(reply)) return rejected_by(FailureReason::ehlo_rejected, reply);
            break;

        case State::helo:
            if (reply.code == 250) {
                if (options_.tls == TlsMode::starttls) {
                    return fail_and_quit(FailureReason::starttls_unavailable,
                                         "server does not speak EHLO, so it cannot offer STARTTLS");
                }
                return after_ehlo();
            }
            if (is_rejection(reply)) return rejected_by(FailureReason::ehlo_rejected, reply);
            break;

        case State::starttls:
            if (reply.code == 220) {
                if (parser_.buffered() > 0) {
                    // CVE-2011-0411 and friends: plaintext after the 220 would be read as if it
                    // had come through TLS.
                    return fail_and_close(FailureReason::protocol,
                                          "server sent data after its STARTTLS reply, before TLS");
                }
                state_ = State::upgrading;
                phase_ = Phase::tls_handshake;
                return {Action::Kind::start_tls, phase_, {}};
            }
            if (is_rejection(reply)) return rejected_by(FailureReason::starttls_rejected, reply);
            break;

        case State::ehlo_after_tls:
            if (reply.code == 250) {
                record_capabilities(reply);
                return after_ehlo();
            }
            if (is_rejection(reply)) return rejected_by(FailureReason::ehlo_rejected, reply);
            break;

        case State::auth:
            return on_auth_reply(reply);

        case State::transaction:
            return on_transaction_reply(reply);

        case State::message:
            return on_message_reply(reply);

        case State::quit:
            return finish();

        case State::implicit_tls:
        case State::upgrading:
        case State::finished:
            break;
    }
    return fail_and_close(FailureReason::protocol, "unexpected reply " + reply.summary());
}

Action Dialog::after_ehlo() { return options_.auth ? start_auth() : after_auth(); }

Action Dialog::after_auth() { return options_.transaction ? start_transaction() : quit(); }

Action Dialog::start_auth() {
    const AuthRequest& auth = *options_.auth;
    if (!tls_active_ && !auth.allow_plaintext) {
        return fail_and_quit(
            FailureReason::auth_insecure,
            "credentials would be sent without TLS (allow_plaintext_auth is false)");
    }
    const auto offered = sasl::offered_mechanisms(capabilities_);
    if (offered.empty()) {
        return fail_and_quit(FailureReason::auth_unavailable,
                             "AUTH is not among the EHLO capabilities");
    }
    const auto mechanism = sasl::choose(offered, auth.secret_is_token, auth.mechanism);
    if (!mechanism) {
        return fail_and_quit(
            FailureReason::auth_unavailable,
            sasl::describe_no_choice(offered, auth.secret_is_token, auth.mechanism));
    }
    sasl_.emplace(*mechanism, sasl::Credential{auth.username, auth.secret, auth.host, auth.port});
    const std::string command = "AUTH " + std::string(sasl::name(*mechanism));
    // RFC 4954 4: the initial response goes with the command.
    if (const auto initial = sasl_->initial_response(true)) {
        return send(State::auth, Phase::auth, command + " " + *initial, command + " <redacted>");
    }
    return send(State::auth, Phase::auth, command);
}

Action Dialog::on_auth_reply(const Reply& reply) {
    if (reply.code == 235) return after_auth();
    if (reply.klass() == 5) return rejected_by(smtp_auth_refusal(reply), reply);
    if (reply.klass() == 4) return rejected_by(FailureReason::auth_tempfail, reply);
    if (reply.code != 334) {
        return fail_and_close(FailureReason::protocol,
                              "unexpected reply to AUTH: " + reply.summary());
    }
    // 334: the server wants the next SASL message.
    const auto answer = sasl_->answer(reply.lines.empty() ? "" : reply.lines.front());
    if (!answer.error.empty()) {
        return fail_and_close(FailureReason::protocol, answer.error + ": " + reply.summary());
    }
    if (!answer.server_error.empty()) {
        transcript_.note("server's OAuth2 error: " + answer.server_error);
    }
    return send(State::auth, Phase::auth, answer.response, answer.secret ? "<redacted>" : "");
}

Phase Dialog::phase_of(Command command) {
    switch (command) {
        case Command::mail:
            return Phase::mail;
        case Command::rcpt:
            return Phase::rcpt;
        case Command::data:
        case Command::rset:
            return Phase::data;
    }
    return Phase::data;
}

std::string Dialog::command_line(Command command) {
    const TransactionRequest& transaction = *options_.transaction;
    switch (command) {
        case Command::mail: {
            std::string line = "MAIL FROM:<" + transaction.from + ">";
            // RFC 1870: declaring the size lets the server refuse an oversized message up front.
            if (has_capability("SIZE"))
                line += " SIZE=" + std::to_string(transaction.message.size());
            return line;
        }
        case Command::rcpt:
            return "RCPT TO:<" + transaction.to[next_recipient_++] + ">";
        case Command::data:
            return "DATA";
        case Command::rset:
            return "RSET";
    }
    return "NOOP";
}

Action Dialog::start_transaction() {
    const TransactionRequest& transaction = *options_.transaction;
    // RFC 1870: a server that announces a limit would refuse a larger message anyway.
    if (const auto size = capability("SIZE")) {
        const auto limit = std::strtoull(std::string(*size).c_str(), nullptr, 10);
        if (limit > 0 && transaction.message.size() > limit) {
            return fail_and_quit(FailureReason::size_exceeded,
                                 "the message (" + std::to_string(transaction.message.size()) +
                                     " bytes) is over the server's SIZE limit of " +
                                     std::to_string(limit));
        }
    }
    to_send_ = {Command::mail};
    for (std::size_t i = 0; i < transaction.to.size(); ++i) to_send_.push_back(Command::rcpt);
    to_send_.push_back(transaction.rcpt_only ? Command::rset : Command::data);

    if (!has_capability("PIPELINING")) return send_next_command();
    // RFC 2920: MAIL and the RCPTs (and RSET, which sends nothing) in one write; the replies
    // come back in order. DATA waits for them: a 354 to a pipelined DATA would commit the client
    // to sending the message to the recipients that were accepted, even when one was refused.
    std::string batch;
    while (!to_send_.empty() && to_send_.front() != Command::data) {
        const std::string line = command_line(to_send_.front());
        transcript_.client(line);
        batch += line + "\r\n";
        awaiting_.push_back(to_send_.front());
        to_send_.pop_front();
    }
    state_ = State::transaction;
    phase_ = Phase::mail;
    out_ = std::move(batch);
    awaiting_write_ = true;
    return {Action::Kind::write, phase_, out_};
}

Action Dialog::send_next_command() {
    const Command command = to_send_.front();
    to_send_.pop_front();
    awaiting_.push_back(command);
    return send(State::transaction, phase_of(command), command_line(command));
}

Action Dialog::on_transaction_reply(const Reply& reply) {
    const Command command = awaiting_.front();
    awaiting_.pop_front();
    const int klass = reply.klass();
    const bool rejected = klass == 4 || klass == 5;
    if (throttles(reply)) {
        record_failure(FailureReason::throttled, reply.summary());
    }
    switch (command) {
        case Command::mail:
            if (reply.code == 552) {
                record_failure(FailureReason::size_exceeded, reply.summary());
            } else if (rejected) {
                record_failure(
                    klass == 4 ? FailureReason::mail_tempfail : FailureReason::mail_rejected,
                    reply.summary());
            } else if (reply.code != 250) {
                return fail_and_close(FailureReason::protocol,
                                      "unexpected reply to MAIL: " + reply.summary());
            }
            break;
        case Command::rcpt:
            // 251: not local, will forward (RFC 5321 3.4) is an acceptance too.
            if (rejected) {
                record_failure(
                    klass == 4 ? FailureReason::rcpt_tempfail : FailureReason::rcpt_rejected,
                    reply.summary());
            } else if (reply.code != 250 && reply.code != 251) {
                return fail_and_close(FailureReason::protocol,
                                      "unexpected reply to RCPT: " + reply.summary());
            }
            break;
        case Command::data:
            if (rejected) {
                record_failure(
                    klass == 4 ? FailureReason::data_tempfail : FailureReason::data_rejected,
                    reply.summary());
            } else if (reply.code != 354) {
                return fail_and_close(FailureReason::protocol,
                                      "unexpected reply to DATA: " + reply.summary());
            }
            break;
        case Command::rset:
            if (reply.code != 250) {
                return fail_and_close(FailureReason::protocol,
                                      "unexpected reply to RSET: " + reply.summary());
            }
            break;
    }
    if (reply.code == 421) return fail_and_close(*failure_, failure_detail_);

    if (!awaiting_.empty()) {
        // More pipelined replies to come; read them against their commands.
        phase_ = phase_of(awaiting_.front());
        return read();
    }
    if (failure_) return quit();
    if (command == Command::data) return send_message();  // after the 354
    return to_send_.empty() ? quit() : send_next_command();
}

Action Dialog::send_message() {
    state_ = State::message;
    phase_ = Phase::data_end;
    transcript_.client("(message, " + std::to_string(options_.transaction->message.size()) +
                       " bytes, then .)");
    out_ = options_.transaction->message;
    awaiting_write_ = true;
    return {Action::Kind::write, phase_, out_};
}

Action Dialog::on_message_reply(const Reply& reply) {
    if (reply.code == 250) {
        message_accepted_ = true;
        queue_id_ =
            queue_id_from_reply(reply.lines.empty() ? std::string_view() : reply.lines.front());
        if (queue_id_) transcript_.note("queued as " + *queue_id_);
        return quit();
    }
    if (reply.code == 552) return rejected_by(FailureReason::size_exceeded, reply);
    if (reply.klass() == 4) return rejected_by(FailureReason::message_tempfail, reply);
    if (reply.klass() == 5) return rejected_by(FailureReason::message_rejected, reply);
    return fail_and_close(FailureReason::protocol,
                          "unexpected reply to the message: " + reply.summary());
}

void Dialog::record_failure(FailureReason reason, std::string detail) {
    if (failure_) return;
    failure_ = reason;
    failure_detail_ = std::move(detail);
    transcript_.note("failed: " + std::string(to_string(reason)) + ": " + failure_detail_);
}

Action Dialog::fail_and_quit(FailureReason reason, std::string detail) {
    record_failure(reason, std::move(detail));
    return state_ == State::quit ? finish() : quit();
}

Action Dialog::fail_and_close(FailureReason reason, std::string detail) {
    record_failure(reason, std::move(detail));
    return finish();
}

Action Dialog::rejected_by(FailureReason reason, const Reply& reply) {
    if (throttles(reply)) reason = FailureReason::throttled;
    if (reply.code == 421) return fail_and_close(reason, reply.summary());
    return fail_and_quit(reason, reply.summary());
}

Action Dialog::quit() { return send(State::quit, Phase::quit, "QUIT"); }

Action Dialog::finish() {
    state_ = State::finished;
    return {Action::Kind::done, phase_, {}};
}

void Dialog::record_capabilities(const Reply& ehlo_reply) {
    // The first line is the server's greeting; each following line is one extension.
    capabilities_.assign(ehlo_reply.lines.begin() + 1, ehlo_reply.lines.end());
}

}  // namespace mailcanary::smtp
