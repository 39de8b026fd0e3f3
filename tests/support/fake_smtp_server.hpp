// An in-process, scripted SMTP server for unit tests of the SMTP client: it plays the faults a
// real server won't (stalls, dripped or endless replies, broken TLS, abrupt closes).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/test_pki.hpp"

namespace mailcanary::test {

struct ScriptStep {
    enum class Kind {
        send,
        send_dripped,
        expect_line,
        start_tls,
        abort_tls,
        delay,
        send_forever,
        hang,
        close,
        reset,
        answer
    };

    Kind kind{};
    std::string bytes;                     // send, send_dripped, send_forever; expect_line's prefix
    std::chrono::milliseconds duration{};  // delay; the gap between bytes for send_dripped
    std::function<std::string(const std::string& line)> respond{};  // answer
};

// Writes the bytes exactly.
ScriptStep send(std::string bytes);
// Writes the bytes one at a time, waiting gap between them.
ScriptStep send_dripped(std::string bytes, std::chrono::milliseconds gap);
// Reads one CRLF-terminated line and records it (without CRLF); closes the connection when the
// line does not start with prefix (compared case-insensitively).
ScriptStep expect_line(std::string prefix);
// Reads one CRLF-terminated line, records it, and writes what `respond` makes of it (without
// its CRLF): a server whose answer depends on what the client chose to send.
ScriptStep answer(std::function<std::string(const std::string& line)> respond);
// Server side of a TLS handshake; plaintext the client pipelined after its STARTTLS is dropped.
ScriptStep start_tls();
// Server side of a TLS 1.2 handshake that the server aborts after sending its certificate: its
// ServerHello and Certificate, then a fatal internal_error alert (80) and a close, as OpenSMTPD
// 6.8 on OpenSSL 3 does. The client has seen (and verified) the certificate by then.
ScriptStep abort_tls();
ScriptStep delay(std::chrono::milliseconds duration);
// Writes chunk again and again until the client disconnects. Throws if chunk is empty.
ScriptStep send_forever(std::string chunk);
// Ends the script early: from here the server only records lines until the client disconnects.
ScriptStep hang();
// Closes the connection (after a TLS close_notify when TLS is up); later steps do not run.
ScriptStep close();
// Resets the connection (a TCP RST, no TLS close_notify); later steps do not run.
ScriptStep reset();

struct FakeServerOptions {
    std::optional<KeyPair> tls;  // required by start_tls(), abort_tls() and implicit_tls
    bool implicit_tls = false;   // TLS handshake right after accept, before the script
};

// Listens on 127.0.0.1 (an ephemeral port) and runs the whole script on every connection it
// accepts, on a thread of its own. When the script ends, it records the client's lines until the
// client disconnects.
class FakeSmtpServer {
  public:
    // Throws std::invalid_argument when TLS is used without options.tls.
    explicit FakeSmtpServer(std::vector<ScriptStep> script, FakeServerOptions options = {});
    ~FakeSmtpServer();  // closes every connection, whatever step it is at, and joins the thread

    FakeSmtpServer(const FakeSmtpServer&) = delete;
    FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

    uint16_t port() const;

    // Lines the clients sent, without CRLF, in the order read, over all connections.
    std::vector<std::string> received_lines() const;

    // Connections accepted so far.
    int connections() const;

    // Waits until every connection accepted so far has ended; false on timeout. Call it before
    // received_lines() when the client may have sent its last line without awaiting a reply.
    bool wait_for_disconnects(std::chrono::milliseconds timeout) const;

    // A well-behaved ESMTP dialogue: 220 banner; EHLO answered by a multi-line 250 (offering
    // STARTTLS if asked: then STARTTLS, 220, TLS handshake and a second EHLO); QUIT answered by
    // 221 and a close.
    static std::vector<ScriptStep> healthy_script(bool offer_starttls);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mailcanary::test
