#include "protocols/imap_dialog.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cctype>

namespace mailcanary::imap {
namespace {

bool starts_with_word(std::string_view text, std::string_view word) {
    return text.size() >= word.size() && iequals(text.substr(0, word.size()), word) &&
           (text.size() == word.size() || text[word.size()] == ' ');
}

Status status_of(std::string_view name) {
    if (name == "OK") return Status::ok;
    if (name == "NO") return Status::no;
    return Status::bad;
}

// What the transcript shows of a response: the first line, with literals counted, not shown.
std::string shown(const Response& response) { return printable(response.line); }

}  // namespace

std::string Completion::describe() const {
    std::string out = status == Status::ok ? "OK" : status == Status::no ? "NO" : "BAD";
    if (!code.empty()) out += " [" + code + "]";
    if (!text.empty()) out += " " + text;
    return printable(out);
}

Client::Client(ClientOptions options, Transcript& transcript)
    : options_(std::move(options)), transcript_(transcript) {}

bool Client::has_capability(std::string_view name) const {
    return std::any_of(capabilities_.begin(), capabilities_.end(),
                       [&](const std::string& capability) { return iequals(capability, name); });
}

Action Client::start() {
    if (options_.tls == TlsMode::implicit) {
        state_ = State::implicit_tls;
        return {Action::Kind::start_tls, {}};
    }
    state_ = State::greeting;
    return read();
}

Action Client::send(State next, std::string line, std::string_view shown_instead) {
    state_ = next;
    transcript_.client(shown_instead.empty() ? std::string_view(line) : shown_instead);
    out_ = std::move(line);
    out_ += "\r\n";
    return {Action::Kind::write, out_};
}

Action Client::command(std::string_view text) {
    if (state_ != State::ready) return fail(FailureReason::imap_protocol, "command while busy");
    return send(State::command, tagged(text));
}

Action Client::idle() {
    if (state_ != State::ready) return fail(FailureReason::imap_protocol, "IDLE while busy");
    return send(State::idle_requested, tagged("IDLE"));
}

Action Client::stop_idling() {
    if (state_ != State::idling) return read();
    return send(State::idle_done, "DONE");
}

Action Client::on_written() {
    if (state_ == State::idling) return {Action::Kind::idling, {}};
    return read();
}

Action Client::on_tls_established() {
    tls_active_ = true;
    if (state_ == State::implicit_tls) {
        state_ = State::greeting;
        return read();
    }
    // RFC 9051 6.2.1: what the server said before TLS is forgotten and asked for again.
    capabilities_.clear();
    return send(State::capability, tagged("CAPABILITY"));
}

std::string Client::tagged(std::string_view command) {
    tag_ = "C" + std::to_string(++tag_counter_);
    completion_ = Completion{};
    return tag_ + " " + std::string(command);
}

Action Client::on_closed() {
    if (state_ == State::failed) return {Action::Kind::failed, {}};
    std::string detail = "the server closed the connection";
    if (bye_) detail += " after BYE " + *bye_;
    const bool logging_in = state_ == State::greeting || state_ == State::capability ||
                            state_ == State::starttls || state_ == State::authenticating;
    return fail(logging_in && !bye_ ? FailureReason::imap_connect : FailureReason::imap_protocol,
                detail);
}

Action Client::fail(FailureReason reason, std::string detail) {
    state_ = State::failed;
    detail = printable(detail);
    transcript_.note("failed: " + std::string(to_string(reason)) + ": " + detail);
    failure_ = Failure{reason, std::move(detail)};
    return {Action::Kind::failed, {}};
}

Action Client::on_bytes(std::string_view received) {
    if (state_ == State::failed) return {Action::Kind::failed, {}};
    reader_.feed(received);
    while (auto response = reader_.next()) {
        transcript_.server(shown(*response));
        const Action next = on_response(std::move(*response));
        // Untagged data may come at any time; what follows a completion waits in the reader for
        // the next command.
        if (next.kind != Action::Kind::read && next.kind != Action::Kind::idling) return next;
    }
    if (!reader_.error().empty()) return fail(FailureReason::imap_protocol, reader_.error());
    return state_ == State::idling ? Action{Action::Kind::idling, {}} : read();
}

void Client::note_capabilities_in(const Response& response) {
    if (response.name == "CAPABILITY") {
        capabilities_.clear();
        for (const Value& value : response.data) capabilities_.push_back(value.text);
        return;
    }
    if (starts_with_word(response.code, "CAPABILITY")) {
        capabilities_.clear();
        std::string_view rest = std::string_view(response.code).substr(10);
        while (!rest.empty()) {
            while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
            const auto end = std::min(rest.find(' '), rest.size());
            if (end > 0) capabilities_.emplace_back(rest.substr(0, end));
            rest.remove_prefix(end);
        }
    }
}

Action Client::on_response(Response response) {
    note_capabilities_in(response);
    switch (state_) {
        case State::greeting:
            return on_greeting(response);
        case State::failed:
            return {Action::Kind::failed, {}};
        default:
            break;
    }
    if (response.kind == Response::Kind::continuation) return on_continuation(response);
    if (response.kind == Response::Kind::untagged) {
        if (response.name == "BYE") bye_ = printable(response.text);
        if (response.name == "EXISTS") mailbox_changed_ = true;
        if (state_ == State::command || state_ == State::idle_requested ||
            state_ == State::idling || state_ == State::idle_done) {
            if (completion_.untagged.size() < kMaxUntaggedPerCommand) {
                completion_.untagged.push_back(std::move(response));
            } else {
                return fail(FailureReason::imap_protocol, "too many untagged responses");
            }
        }
        return state_ == State::idling ? Action{Action::Kind::idling, {}} : read();
    }
    if (response.tag != tag_ || tag_.empty()) {
        return fail(FailureReason::imap_protocol,
                    "a completion for a command not sent: " + response.line);
    }
    if (state_ == State::ready || state_ == State::upgrading) {
        return fail(FailureReason::imap_protocol, "a completion for a command not sent");
    }
    if (state_ == State::capability || state_ == State::starttls ||
        state_ == State::authenticating || state_ == State::capability_after_login) {
        return on_login_sequence_completion(response);
    }
    completion_.status = status_of(response.name);
    completion_.code = response.code;
    completion_.text = response.text;
    tag_.clear();
    state_ = State::ready;
    return {Action::Kind::completed, {}};
}

Action Client::on_greeting(const Response& response) {
    if (response.kind == Response::Kind::untagged && response.name == "OK") {
        return after_greeting_or_capabilities();
    }
    if (response.kind == Response::Kind::untagged && response.name == "PREAUTH") {
        // Already authenticated (RFC 9051 7.1.4): nothing to log in with, and no STARTTLS.
        if (options_.tls == TlsMode::starttls && !tls_active_) {
            return fail(FailureReason::imap_tls, "PREAUTH greeting on a connection without TLS");
        }
        if (capabilities_.empty()) return send(State::capability_after_login, tagged("CAPABILITY"));
        state_ = State::ready;
        return {Action::Kind::ready, {}};
    }
    if (response.kind == Response::Kind::untagged && response.name == "BYE") {
        return fail(FailureReason::imap_connect,
                    "the server refused the session: " + response.text);
    }
    return fail(FailureReason::imap_protocol, "not an IMAP greeting: " + response.line);
}

Action Client::after_greeting_or_capabilities() {
    if (capabilities_.empty()) return send(State::capability, tagged("CAPABILITY"));
    if (options_.tls == TlsMode::starttls && !tls_active_) {
        if (!has_capability("STARTTLS")) {
            return fail(FailureReason::imap_tls, "the server does not offer STARTTLS");
        }
        return send(State::starttls, tagged("STARTTLS"));
    }
    return start_login();
}

Action Client::start_login() {
    const Credentials& credentials = options_.credentials;
    if (!tls_active_ && !options_.allow_plaintext) {
        return fail(FailureReason::imap_auth,
                    "refusing to send credentials without TLS (allow_plaintext_auth is false)");
    }
    std::optional<sasl::Mechanism> mechanism = credentials.mechanism;
    if (!mechanism && credentials.secret_is_token) {
        mechanism = has_capability("AUTH=OAUTHBEARER") && !has_capability("AUTH=XOAUTH2")
                        ? sasl::Mechanism::oauthbearer
                        : sasl::Mechanism::xoauth2;
    }
    const auto login_line = [&]() -> std::optional<std::string> {
        auto user = quoted(credentials.username);
        auto password = quoted(credentials.secret);
        if (!user || !password) return std::nullopt;
        return "LOGIN " + *user + " " + *password;
    };
    if (!mechanism) {
        // LOGIN is the one every server has, unless it is disabled (RFC 9051 6.2.3) or the
        // password cannot be quoted; AUTHENTICATE PLAIN takes any bytes.
        if (!has_capability("LOGINDISABLED")) {
            if (auto line = login_line()) {
                std::string tagged_line = tagged(*line);
                return send(
                    State::authenticating, std::move(tagged_line),
                    tag_ + " LOGIN " + printable(credentials.username) + " <password hidden>");
            }
        }
        mechanism = sasl::Mechanism::plain;
    }
    if (*mechanism == sasl::Mechanism::login) {
        auto line = login_line();
        if (!line) {
            return fail(FailureReason::imap_auth,
                        "the user name or password cannot be sent with LOGIN (8-bit or line "
                        "breaks): use mechanism = \"plain\"");
        }
        std::string tagged_line = tagged(*line);
        return send(State::authenticating, std::move(tagged_line),
                    tag_ + " LOGIN " + printable(credentials.username) + " <password hidden>");
    }
    std::string response;
    switch (*mechanism) {
        case sasl::Mechanism::plain:
            response = sasl::plain_response(credentials.username, credentials.secret);
            break;
        case sasl::Mechanism::xoauth2:
            response = sasl::xoauth2_response(credentials.username, credentials.secret);
            break;
        case sasl::Mechanism::oauthbearer:
            response = sasl::oauthbearer_response(credentials.username, credentials.host,
                                                  credentials.port, credentials.secret);
            break;
        default:
            return fail(
                FailureReason::imap_auth,
                "mechanism " + std::string(sasl::name(*mechanism)) + " is not supported for IMAP");
    }
    const std::string name(sasl::name(*mechanism));
    if (!has_capability("AUTH=" + name)) {
        return fail(FailureReason::imap_auth, "the server does not offer AUTH=" + name);
    }
    // With SASL-IR the credentials go with the command, saving a round trip (RFC 4959).
    const bool initial_response = has_capability("SASL-IR");
    std::string line = tagged("AUTHENTICATE " + name);
    const std::string shown_line = line + " <credentials hidden>";
    sasl_response_sent_ = initial_response;
    if (initial_response) {
        line += " " + sasl::base64_encode(response);
    } else {
        pending_sasl_response_ = sasl::base64_encode(response);
    }
    return send(State::authenticating, std::move(line), shown_line);
}

Action Client::on_continuation(const Response& response) {
    if (state_ == State::idle_requested) {
        state_ = State::idling;
        return {Action::Kind::idling, {}};
    }
    if (state_ == State::authenticating && !sasl_response_sent_) {
        sasl_response_sent_ = true;
        return send(State::authenticating, std::exchange(pending_sasl_response_, {}),
                    "<credentials hidden>");
    }
    if (state_ == State::authenticating) {
        // A challenge after the credentials: XOAUTH2 and OAUTHBEARER report an error this way
        // and wait for an empty response before saying NO (RFC 7628 3.2.3).
        auto decoded = sasl::base64_decode(response.text);
        transcript_.note("server error: " + printable(decoded.value_or(response.text)));
        return send(State::authenticating, "");
    }
    return fail(FailureReason::imap_protocol, "an unexpected continuation request");
}

Action Client::on_login_sequence_completion(const Response& response) {
    const Status status = status_of(response.name);
    const std::string described = response.name +
                                  (response.code.empty() ? "" : " [" + response.code + "]") +
                                  (response.text.empty() ? "" : " " + response.text);
    tag_.clear();
    switch (state_) {
        case State::capability:
            if (status != Status::ok) {
                return fail(FailureReason::imap_protocol, "CAPABILITY: " + described);
            }
            if (capabilities_.empty()) {
                return fail(FailureReason::imap_protocol, "the server listed no capabilities");
            }
            return after_greeting_or_capabilities();
        case State::starttls:
            if (status != Status::ok)
                return fail(FailureReason::imap_tls, "STARTTLS: " + described);
            // Bytes after the OK and before the handshake would be plaintext injected into the
            // TLS session (CVE-2011-0411).
            if (reader_.has_partial()) {
                return fail(FailureReason::imap_tls, "the server sent data after STARTTLS OK");
            }
            state_ = State::upgrading;
            return {Action::Kind::start_tls, {}};
        case State::authenticating:
            if (status != Status::ok) return fail(FailureReason::imap_auth, "login: " + described);
            // RFC 9051 6.2: capabilities may change after login; the OK often lists them.
            if (!starts_with_word(response.code, "CAPABILITY")) {
                return send(State::capability_after_login, tagged("CAPABILITY"));
            }
            state_ = State::ready;
            return {Action::Kind::ready, {}};
        case State::capability_after_login:
            if (status != Status::ok) {
                return fail(FailureReason::imap_protocol, "CAPABILITY: " + described);
            }
            state_ = State::ready;
            return {Action::Kind::ready, {}};
        default:
            return fail(FailureReason::imap_protocol, "unexpected completion: " + described);
    }
}

}  // namespace mailcanary::imap
