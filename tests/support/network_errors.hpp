// Boost.MySQL's check_network_errors, for our sessions over real sockets: a healthy scripted
// conversation is replayed with the server failing at each of its turns in turn (it closes the
// connection, resets it, or falls silent), and every run must end with the reason for that turn,
// in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"
#include "support/fake_smtp_server.hpp"

namespace mailcanary::test {

// One turn of the server: it reads what the client sent (expect_line steps), then answers
// (send, or start_tls). The client waits for the answer in `phase`.
struct Turn {
    Phase phase;
    std::vector<ScriptStep> reads;
    ScriptStep answer;
};

enum class NetworkFault { closed, reset, silent };

// How one run of the client ended.
struct RunResult {
    std::optional<FailureReason> failure;  // none: success
    std::string transcript;
};

// Runs the client once, against the fake server's `port`, with `timeout` for the whole run.
using RunClient = std::function<RunResult(uint16_t port, std::chrono::milliseconds timeout)>;
// The reason a run must end with when the server fails so while the client waits in `phase`;
// none: the run still succeeds.
using ExpectedReason = std::function<std::optional<FailureReason>(Phase, NetworkFault)>;

// What a session makes of a fault in most phases: closed, network or timeout; during the TLS
// handshake, a closed or reset connection is a failed handshake.
std::optional<FailureReason> usual_reason(Phase phase, NetworkFault fault);

struct NetworkErrorCheck {
    std::vector<Turn> turns;
    FakeServerOptions server;
    RunClient run;
    ExpectedReason expected = usual_reason;
    std::chrono::milliseconds timeout{250};
    // A run ends by its deadline plus this; a closed or reset connection ends it before.
    std::chrono::milliseconds grace{250};
};

// Runs the conversation healthy first (it must succeed), then once for each turn and fault.
void check_network_errors(const NetworkErrorCheck& check);

}  // namespace mailcanary::test
