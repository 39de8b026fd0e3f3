// Why a scheduled run did not start: the `reason` label of mailcanary_probe_skipped_total.
#pragma once

#include <array>
#include <string_view>

namespace mailcanary {

// overlap: the previous run was still going; concurrency: every slot under the cap on runs in
// flight stayed taken until the run's latest start; stalled: the agent's loop was blocked for a
// whole interval and the tick passed unseen. backoff, connection_budget, message_budget: the
// probe kind held the run back (ProbeKind::hold_back): its SMTP server throttles the agent, or
// the run would spend more than max_connections_per_minute or max_messages_per_hour.
enum class SkipReason { overlap, concurrency, stalled, backoff, connection_budget, message_budget };

inline constexpr std::array<std::string_view, 6> kSkipReasonNames{
    "overlap", "concurrency", "stalled", "backoff", "connection_budget", "message_budget"};

}  // namespace mailcanary
