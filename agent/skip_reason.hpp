// Why a scheduled run did not start: the `reason` label of mailcanary_probe_skipped_total.
#pragma once

#include <array>
#include <string_view>

namespace mailcanary {

// overlap: the previous run was still going; concurrency: every slot under the cap on runs in
// flight stayed taken until the run's latest start; stalled: the agent's loop was blocked for a
// whole interval and the tick passed unseen.
enum class SkipReason { overlap, concurrency, stalled };

inline constexpr std::array<std::string_view, 3> kSkipReasonNames{"overlap", "concurrency",
                                                                  "stalled"};

}  // namespace mailcanary
