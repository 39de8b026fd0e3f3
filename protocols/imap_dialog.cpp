#include "protocols/imap_dialog.hpp"
#include "common/text.hpp"
#include "protocols/auth_refusal.hpp"
#include "protocols/imap_throttling.hpp"

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

// A command's name: its first word, or its first two after UID ("UID COPY").
std::string command_name(std::string_view command) {
    const auto word_end = [&](std::size_t from) {
        return std::min(command.find(' ', from), command.size());
    };
    const std::size_t first = word_end(0);
    if (!iequals(command.substr(0, first), "UID") || first == command.size()) {
        return std::string(command.substr(0, first));
    }
    return std::string(command.substr(0, word_end(first + 1)));
}

// What the transcript shows of a response: the first line, with literals counted, not shown.
std::string shown(const Response& response) { return printable(response.line); }

// A status response for failure details: "NO [CODE] text".
std::string describe(const Response& response) {
    return response.name + (response.code.empty() ? "" : " [" + response.code + "]") +
           (response.text.empty() ? "" : " " + response.text);
}

}  // namespace

std::string Completion::describe() const {
    std::string out = status == Status::ok ? "OK" : status == Status::no ? "NO" : "BAD";
    if (!code.empty()) out += " [" + code + "]";
    if (!text.empty()) out += " " + text;
    return printable(out);
}

Client::Client(ClientOptions options, Transcript& transcript)
    : options_(std::move(options)), transcript_(transcript) {}

std::optional<Phase> Client::phase() const {
    switch (state_) {
        case State::implicit_tls:
        case State::upgrading:
            return Phase::tls_handshake;
        case State::greeting:
            return Phase::greeting;
        case State::capability:
        case State::capability_after_login:
            return Phase::capability;
        case State::starttls:
            return Phase::starttls;
        case State::authenticating:
            return Phase::auth;
        case State::ready:
        case State::command:
        case State::idle_requested:
        case State::idling:
        case State::idle_done:
        case State::failed:
            break;
    }
    return std::nullopt;
}

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
    if (state_ != State::ready) return fail(FailureReason::protocol, "command while busy");
    return send(State::command, tagged(text));
}

Action Client::idle() {
    if (state_ != State::ready) return fail(FailureReason::protocol, "IDLE while busy");
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
    command_name_ = command_name(command);
    completion_ = Completion{};
    reader_.release();  // the last command's data went with its completion
    return tag_ + " " + std::string(command);
}

Action Client::on_closed() {
    if (state_ == State::failed) return {Action::Kind::failed, {}};
    std::string detail = "the server closed the connection";
    if (bye_) detail += " after BYE " + *bye_;
    return ended_by_server(std::move(detail));
}

Action Client::ended_by_server(std::string detail) {
    if (bye_throttling_) return fail_throttled(*bye_throttling_, std::move(detail));
    return fail(FailureReason::closed, std::move(detail));
}

Action Client::fail_throttled(const Throttling& throttling, std::string detail) {
    const Action action = fail(FailureReason::throttled, std::move(detail));
    failure_->backoff_hint = throttling.backoff_hint;
    return action;
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
    if (!reader_.error().empty()) return fail(FailureReason::protocol, reader_.error());
    // RFC 9051 7.1.5: after BYE the server closes the connection. Nothing is waited for from
    // one that keeps it open, in IDLE or not; LOGOUT's BYE comes before its completion.
    if (bye_ && !(state_ == State::command && iequals(command_name_, "LOGOUT"))) {
        return ended_by_server("the server said BYE " + *bye_);
    }
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
        if (response.name == "BYE") {
            bye_ = printable(response.text);
            bye_throttling_ = throttling(response.code, response.text, {});
        }
        if (response.name == "EXISTS") mailbox_changed_ = true;
        if (state_ == State::command || state_ == State::idle_requested ||
            state_ == State::idling || state_ == State::idle_done) {
            if (completion_.untagged.size() < kMaxUntaggedPerCommand) {
                completion_.untagged.push_back(std::move(response));
            } else {
                return fail(FailureReason::protocol, "too many untagged responses");
            }
        }
        return state_ == State::idling ? Action{Action::Kind::idling, {}} : read();
    }
    if (response.tag != tag_ || tag_.empty()) {
        return fail(FailureReason::protocol,
                    "a completion for a command not sent: " + response.line);
    }
    if (state_ == State::ready || state_ == State::upgrading) {
        return fail(FailureReason::protocol, "a completion for a command not sent");
    }
    // Throttled at any command, the login included: the session is over, and the server would
    // refuse the next command too; whoever opens the next one waits first.
    if (response.name != "OK") {
        if (const auto throttled = throttling(response.code, response.text, command_name_)) {
            return fail_throttled(*throttled, command_name_ + ": " + describe(response));
        }
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
            return fail(FailureReason::starttls_unavailable,
                        "PREAUTH greeting on a connection without TLS");
        }
        if (capabilities_.empty()) return send(State::capability_after_login, tagged("CAPABILITY"));
        state_ = State::ready;
        return {Action::Kind::ready, {}};
    }
    if (response.kind == Response::Kind::untagged && response.name == "BYE") {
        const std::string detail = "the server refused the session: " + response.text;
        if (const auto throttled = throttling(response.code, response.text, {})) {
            return fail_throttled(*throttled, detail);
        }
        return fail(FailureReason::greeting_rejected, detail);
    }
    return fail(FailureReason::protocol, "not an IMAP greeting: " + response.line);
}

Action Client::after_greeting_or_capabilities() {
    if (capabilities_.empty()) return send(State::capability, tagged("CAPABILITY"));
    if (options_.tls == TlsMode::starttls && !tls_active_) {
        if (!has_capability("STARTTLS")) {
            return fail(FailureReason::starttls_unavailable, "the server does not offer STARTTLS");
        }
        return send(State::starttls, tagged("STARTTLS"));
    }
    return start_login();
}

Action Client::start_login() {
    const Credentials& credentials = options_.credentials;
    if (!tls_active_ && !options_.allow_plaintext) {
        return fail(FailureReason::auth_insecure,
                    "refusing to send credentials without TLS (allow_plaintext_auth is false)");
    }
    // IMAP's own LOGIN is the one every server has, unless it is disabled (RFC 9051 6.2.3) or
    // the password cannot be quoted; AUTHENTICATE takes any bytes.
    const bool login_disabled = has_capability("LOGINDISABLED");
    const auto user = quoted(credentials.username);
    const auto password = quoted(credentials.secret);
    const bool login_named = credentials.mechanism == sasl::Mechanism::login;
    if (login_named && login_disabled) {
        return fail(FailureReason::auth_unavailable, "the server disables LOGIN (LOGINDISABLED)");
    }
    if (login_named && (!user || !password)) {
        return fail(FailureReason::auth_unavailable,
                    "the user name or password cannot be sent with LOGIN (8-bit or line "
                    "breaks): use mechanism = \"plain\"");
    }
    const bool login_by_default = !credentials.mechanism && !credentials.secret_is_token &&
                                  !login_disabled && user && password;
    if (!login_named && !login_by_default) return start_authenticate();
    std::string line = tagged("LOGIN " + *user + " " + *password);
    return send(State::authenticating, std::move(line),
                tag_ + " LOGIN " + printable(credentials.username) + " <password hidden>");
}

Action Client::start_authenticate() {
    const Credentials& credentials = options_.credentials;
    const auto offered = sasl::offered_mechanisms(capabilities_);
    const auto mechanism =
        sasl::choose(offered, credentials.secret_is_token, credentials.mechanism);
    if (!mechanism) {
        return fail(FailureReason::auth_unavailable,
                    std::string(has_capability("LOGINDISABLED") ? "LOGIN is disabled and " : "") +
                        sasl::describe_no_choice(offered, credentials.secret_is_token,
                                                 credentials.mechanism));
    }
    sasl_.emplace(*mechanism, sasl::Credential{credentials.username, credentials.secret,
                                               credentials.host, credentials.port});
    std::string line = tagged("AUTHENTICATE " + std::string(sasl::name(*mechanism)));
    const std::string shown_line = line + " <credentials hidden>";
    // With SASL-IR the credentials go with the command, saving a round trip (RFC 4959).
    if (const auto initial = sasl_->initial_response(has_capability("SASL-IR"))) {
        line += " " + *initial;
    }
    return send(State::authenticating, std::move(line), shown_line);
}

Action Client::on_continuation(const Response& response) {
    if (state_ == State::idle_requested) {
        state_ = State::idling;
        return {Action::Kind::idling, {}};
    }
    if (state_ == State::authenticating && sasl_) {
        const auto answer = sasl_->answer(response.text);
        if (!answer.error.empty()) {
            return fail(FailureReason::protocol, answer.error + ": " + response.line);
        }
        if (!answer.server_error.empty()) {
            transcript_.note("server's OAuth2 error: " + answer.server_error);
        }
        return send(State::authenticating, answer.response,
                    answer.secret ? "<credentials hidden>" : "");
    }
    return fail(FailureReason::protocol, "an unexpected continuation request");
}

Action Client::on_login_sequence_completion(const Response& response) {
    const Status status = status_of(response.name);
    const std::string described = describe(response);
    tag_.clear();
    switch (state_) {
        case State::capability:
            if (status != Status::ok) {
                return fail(FailureReason::protocol, "CAPABILITY: " + described);
            }
            if (capabilities_.empty()) {
                return fail(FailureReason::protocol, "the server listed no capabilities");
            }
            return after_greeting_or_capabilities();
        case State::starttls:
            if (status != Status::ok) {
                return fail(FailureReason::starttls_rejected, "STARTTLS: " + described);
            }
            // Bytes after the OK and before the handshake would be plaintext injected into the
            // TLS session (CVE-2011-0411).
            if (reader_.has_partial()) {
                return fail(FailureReason::protocol, "the server sent data after STARTTLS OK");
            }
            state_ = State::upgrading;
            return {Action::Kind::start_tls, {}};
        case State::authenticating:
            if (status != Status::ok) {
                return fail(imap_login_refusal(response.code, response.text),
                            "login: " + described);
            }
            // RFC 9051 6.2: capabilities may change after login; the OK often lists them.
            if (!starts_with_word(response.code, "CAPABILITY")) {
                return send(State::capability_after_login, tagged("CAPABILITY"));
            }
            state_ = State::ready;
            return {Action::Kind::ready, {}};
        case State::capability_after_login:
            if (status != Status::ok) {
                return fail(FailureReason::protocol, "CAPABILITY: " + described);
            }
            state_ = State::ready;
            return {Action::Kind::ready, {}};
        default:
            return fail(FailureReason::protocol, "unexpected completion: " + described);
    }
}

}  // namespace mailcanary::imap
