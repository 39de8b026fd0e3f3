#include "probes/smtp_dialog.hpp"

#include <algorithm>
#include <cctype>

namespace mailcanary::smtp {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::toupper(static_cast<unsigned char>(x)) ==
               std::toupper(static_cast<unsigned char>(y));
    });
}

void log_reply(Transcript& transcript, const Reply& reply) {
    for (std::size_t i = 0; i < reply.lines.size(); ++i) {
        const char separator = i + 1 < reply.lines.size() ? '-' : ' ';
        transcript.server(std::to_string(reply.code) + separator + reply.lines[i]);
    }
}

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
        default:
            return false;
    }
}

bool Dialog::has_capability(std::string_view keyword) const {
    return std::any_of(capabilities_.begin(), capabilities_.end(), [&](const std::string& line) {
        const std::string_view view(line);
        return iequals(view.substr(0, view.find(' ')), keyword);
    });
}

Action Dialog::send(State next, Phase phase, std::string_view command_line) {
    state_ = next;
    phase_ = phase;
    transcript_.client(command_line);
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
    return fail(FailureReason::closed,
                "server closed the connection during " + std::string(to_string(phase_)));
}

Action Dialog::on_bytes(std::string_view received) {
    parser_.feed(received);
    for (;;) {
        switch (parser_.next()) {
            case ReplyParser::Status::need_more:
                return read();
            case ReplyParser::Status::error:
                return fail(FailureReason::protocol, parser_.error());
            case ReplyParser::Status::reply:
                break;
        }
        const Reply& reply = parser_.reply();
        log_reply(transcript_, reply);
        Action next = on_reply(reply);
        if (next.kind != Action::Kind::write) return next;
        // Without PIPELINING a server speaks only when spoken to: more bytes here would be
        // taken as the answer to the next command and desynchronise the dialog.
        if (parser_.buffered() > 0) {
            return fail(FailureReason::protocol,
                        "server sent data before the client's next command");
        }
        return next;
    }
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
        case State::quit:
        case State::finished:
            return "quit";
    }
    return "unknown";
}

Action Dialog::on_reply(const Reply& reply) {
    replies_.push_back({command_answered(), reply.code});

    const bool rejected = reply.klass() == 4 || reply.klass() == 5;
    switch (state_) {
        case State::banner:
            if (reply.code == 220) return send(State::ehlo, Phase::ehlo, "EHLO " + options_.helo);
            if (rejected) return fail(FailureReason::banner_rejected, reply.summary(), &reply);
            break;

        case State::ehlo:
            if (reply.code == 250) {
                record_capabilities(reply);
                if (options_.tls != TlsMode::starttls) return quit();
                if (!has_capability("STARTTLS")) {
                    return fail(FailureReason::starttls_unavailable,
                                "STARTTLS is not among the EHLO capabilities", &reply);
                }
                return send(State::starttls, Phase::starttls, "STARTTLS");
            }
            // RFC 5321 4.1.4: a server that does not know EHLO answers 5xx; HELO may still work.
            if (reply.klass() == 5) return send(State::helo, Phase::ehlo, "HELO " + options_.helo);
            if (rejected) return fail(FailureReason::ehlo_rejected, reply.summary(), &reply);
            break;

        case State::helo:
            if (reply.code == 250) {
                if (options_.tls != TlsMode::starttls) return quit();
                return fail(FailureReason::starttls_unavailable,
                            "server does not speak EHLO, so it cannot offer STARTTLS", &reply);
            }
            if (rejected) return fail(FailureReason::ehlo_rejected, reply.summary(), &reply);
            break;

        case State::starttls:
            if (reply.code == 220) {
                if (parser_.buffered() > 0) {
                    // CVE-2011-0411 and friends: plaintext after the 220 would be read as if it
                    // had come through TLS.
                    return fail(FailureReason::protocol,
                                "server sent data after its STARTTLS reply, before TLS");
                }
                state_ = State::upgrading;
                phase_ = Phase::tls_handshake;
                return {Action::Kind::start_tls, phase_, {}};
            }
            if (rejected) return fail(FailureReason::starttls_rejected, reply.summary(), &reply);
            break;

        case State::ehlo_after_tls:
            if (reply.code == 250) {
                record_capabilities(reply);
                return quit();
            }
            if (rejected) return fail(FailureReason::ehlo_rejected, reply.summary(), &reply);
            break;

        case State::quit:
            return finish();

        case State::implicit_tls:
        case State::upgrading:
        case State::finished:
            break;
    }
    return fail(FailureReason::protocol, "unexpected reply " + reply.summary());
}

Action Dialog::fail(FailureReason reason, std::string detail, const Reply* reply) {
    if (!failure_) {
        failure_ = reason;
        failure_detail_ = std::move(detail);
        transcript_.note("failed: " + std::string(to_string(reason)) + ": " + failure_detail_);
    }
    // After a rejection the session is still in step, so say goodbye properly; 421 means the
    // server is closing the channel itself (RFC 5321 3.8), and after garbage nothing is certain.
    const bool in_step = reply != nullptr && reply->code != 421 && state_ != State::quit;
    return in_step ? quit() : finish();
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
