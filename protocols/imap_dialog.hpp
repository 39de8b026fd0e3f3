// The IMAP client side of a mailbox session as a state machine without I/O: greeting, STARTTLS,
// login, then one command at a time (IDLE included). It consumes what the server sends and says
// what to do next; a driver (imap_session) performs the actions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/imap_response.hpp"
#include "protocols/imap_throttling.hpp"
#include "protocols/phase.hpp"
#include "protocols/sasl.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary::imap {

struct Credentials {
    std::string username;
    std::string secret;  // the password, or the OAuth2 access token
    bool secret_is_token = false;
    // None: LOGIN for a password (AUTHENTICATE when LOGIN is disabled or cannot carry it), the
    // strongest token mechanism offered for a token. Mechanism::login is the LOGIN command.
    std::optional<sasl::Mechanism> mechanism;
    std::string host;  // for OAUTHBEARER's host and port fields
    unsigned port = 0;
};

struct ClientOptions {
    TlsMode tls = TlsMode::implicit;
    Credentials credentials;
    bool allow_plaintext = false;  // send credentials without TLS
};

struct Action {
    enum class Kind {
        read,       // read more bytes, then call on_bytes (or on_closed at end of stream)
        write,      // write `bytes`, then call on_written
        start_tls,  // perform the TLS client handshake, then call on_tls_established
        ready,      // logged in, nothing in flight: call command() or idle()
        completed,  // the command finished: completion() holds the result; the client is ready
        idling,     // the server is in IDLE: keep reading; stop_idling() ends it
        failed,     // the session is over: failure() says why
    };
    Kind kind = Kind::failed;
    std::string_view bytes;  // for write; valid until the next call into the client
};

enum class Status { ok, no, bad };

// The end of one command: its tagged status and the untagged data that came with it.
struct Completion {
    Status status = Status::bad;
    std::string code;  // resp-text-code, e.g. "TRYCREATE"
    std::string text;
    std::vector<Response> untagged;

    bool ok() const { return status == Status::ok; }
    // "NO [CODE] text", for failure details.
    std::string describe() const;
};

using mailcanary::Failure;

class Client {
  public:
    Client(ClientOptions options, Transcript& transcript);

    Action start();
    Action on_bytes(std::string_view received);
    Action on_written();
    Action on_tls_established();
    Action on_closed();

    // Only when ready (after Action::ready or Action::completed).
    Action command(std::string_view text);
    Action idle();
    // Only while idling: sends DONE; the IDLE command then completes.
    Action stop_idling();

    const Completion& completion() const { return completion_; }
    const std::optional<Failure>& failure() const { return failure_; }
    bool has_capability(std::string_view name) const;  // case-insensitive, e.g. "IDLE"
    const std::vector<std::string>& capabilities() const { return capabilities_; }
    // True once an untagged EXISTS announced new messages since the last call.
    bool take_mailbox_changed() { return std::exchange(mailbox_changed_, false); }
    bool idling() const { return state_ == State::idling; }
    bool ready() const { return state_ == State::ready; }
    // Where the login sequence is, for timing and failure reasons: tls_handshake, greeting,
    // capability, starttls or auth. None once logged in: the caller knows what its commands are.
    std::optional<Phase> phase() const;

    // Bounds the data one command may collect (a SEARCH is one response, a FETCH one per message).
    static constexpr std::size_t kMaxUntaggedPerCommand = 100'000;

  private:
    enum class State {
        implicit_tls,
        greeting,
        capability,  // CAPABILITY before STARTTLS or login
        starttls,
        upgrading,
        authenticating,
        capability_after_login,
        ready,
        command,
        idle_requested,  // IDLE sent, waiting for "+"
        idling,
        idle_done,  // DONE sent, waiting for the tagged completion
        failed,
    };

    Action send(State next, std::string line, std::string_view shown = {});
    Action read() const { return {Action::Kind::read, {}}; }
    Action on_response(Response response);
    Action on_greeting(const Response& response);
    Action on_login_sequence_completion(const Response& response);
    Action after_greeting_or_capabilities();
    Action start_login();
    Action start_authenticate();
    Action on_continuation(const Response& response);
    Action fail(FailureReason reason, std::string detail);
    // The server ended the session (BYE, or a close): `closed`, or `throttled` when its BYE
    // said so.
    Action ended_by_server(std::string detail);
    // Fails as `throttled`, keeping the server's backoff hint.
    Action fail_throttled(const Throttling& throttling, std::string detail);
    // "C<n> command", making it the command in flight.
    std::string tagged(std::string_view command);
    void note_capabilities_in(const Response& response);

    ClientOptions options_;
    Transcript& transcript_;
    ResponseReader reader_;
    State state_ = State::greeting;
    bool tls_active_ = false;
    unsigned tag_counter_ = 0;
    std::string tag_;           // of the command in flight
    std::string command_name_;  // of the command in flight: "SELECT", "UID FETCH"
    std::string out_;
    std::optional<sasl::Exchange> sasl_;  // from AUTHENTICATE on
    std::vector<std::string> capabilities_;
    bool mailbox_changed_ = false;
    std::optional<std::string> bye_;            // what the server said before hanging up
    std::optional<Throttling> bye_throttling_;  // its BYE said it throttles the client
    Completion completion_;
    std::optional<Failure> failure_;
};

}  // namespace mailcanary::imap
