#include "support/network_errors.hpp"

#include <gtest/gtest.h>

#include <array>

namespace mailcanary::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::array kFaults{NetworkFault::closed, NetworkFault::reset, NetworkFault::silent};

std::string_view name(NetworkFault fault) {
    switch (fault) {
        case NetworkFault::closed:
            return "closed";
        case NetworkFault::reset:
            return "reset";
        case NetworkFault::silent:
            return "silent";
    }
    return "?";
}

ScriptStep fault_step(NetworkFault fault) {
    switch (fault) {
        case NetworkFault::closed:
            return close();
        case NetworkFault::reset:
            return reset();
        case NetworkFault::silent:
            return hang();
    }
    return hang();
}

// The whole conversation up to turn `failing`, which reads the client's lines and then, instead
// of answering, fails with `fault`; without one, the whole healthy conversation.
std::vector<ScriptStep> script_of(const std::vector<Turn>& turns, std::size_t failing,
                                  std::optional<NetworkFault> fault) {
    std::vector<ScriptStep> script;
    for (std::size_t i = 0; i < turns.size() && i <= failing; ++i) {
        script.insert(script.end(), turns[i].reads.begin(), turns[i].reads.end());
        script.push_back(fault && i == failing ? fault_step(*fault) : turns[i].answer);
    }
    return script;
}

std::string describe(std::optional<FailureReason> reason) {
    return reason ? std::string(to_string(*reason)) : "success";
}

}  // namespace

std::optional<FailureReason> usual_reason(Phase phase, NetworkFault fault) {
    switch (fault) {
        case NetworkFault::closed:
            return phase == Phase::tls_handshake ? FailureReason::tls_handshake
                                                 : FailureReason::closed;
        case NetworkFault::reset:
            return phase == Phase::tls_handshake ? FailureReason::tls_handshake
                                                 : FailureReason::network;
        case NetworkFault::silent:
            return phase == Phase::banner ? FailureReason::banner_timeout : FailureReason::timeout;
    }
    return std::nullopt;
}

void check_network_errors(const NetworkErrorCheck& check) {
    {
        SCOPED_TRACE("the healthy conversation");
        FakeSmtpServer server(script_of(check.turns, check.turns.size(), std::nullopt),
                              check.server);
        const RunResult result = check.run(server.port(), check.timeout);
        EXPECT_FALSE(result.failure) << describe(result.failure) << "\n" << result.transcript;
    }
    for (std::size_t turn = 0; turn < check.turns.size(); ++turn) {
        const Phase phase = check.turns[turn].phase;
        for (const NetworkFault fault : kFaults) {
            SCOPED_TRACE("turn " + std::to_string(turn) + " (" + std::string(to_string(phase)) +
                         "): " + std::string(name(fault)));
            FakeSmtpServer server(script_of(check.turns, turn, fault), check.server);
            const auto started = Clock::now();
            const RunResult result = check.run(server.port(), check.timeout);
            const auto elapsed = Clock::now() - started;
            const auto expected = check.expected(phase, fault);
            EXPECT_EQ(describe(result.failure), describe(expected)) << result.transcript;
            EXPECT_LT(elapsed, check.timeout + check.grace) << result.transcript;
            if (fault != NetworkFault::silent) {
                EXPECT_LT(elapsed, check.timeout)
                    << "a closed or reset connection is noticed at once, not at the deadline\n"
                    << result.transcript;
            }
        }
    }
}

}  // namespace mailcanary::test
