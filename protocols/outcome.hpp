// How a run ended: success, a failure reason with what failed, or stopped.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/transcript.hpp"
#include "protocols/failure_reason.hpp"

namespace mailcanary {

struct Outcome {
    std::optional<FailureReason> failure;  // none: success
    std::string detail;                    // what failed, with the server's reply if any
    bool cancelled = false;                // stopped by shutdown or reload: not a result
    std::string queue_id;                  // the server's id of an accepted message, if it said

    static Outcome failed(FailureReason reason, std::string_view detail) {
        Outcome outcome;
        outcome.failure = reason;
        outcome.detail = printable(detail);  // it may quote the server: keep it safe to show
        return outcome;
    }
    static Outcome stopped() {
        Outcome outcome;
        outcome.cancelled = true;
        return outcome;
    }

    bool success() const { return !failure && !cancelled; }
};

}  // namespace mailcanary
