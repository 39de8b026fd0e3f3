// The bookkeeping of a mailbox's probe messages, without I/O and without a clock of its own
// (every time is given), so it is tested with made-up times: which messages runs wait for, what
// became of each (delivered, lost, abandoned), what a message found in a folder is (awaited,
// late, a leftover to clean up, or not yet ours to touch), and how soon to look again while
// messages are in flight.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "common/duration.hpp"

namespace mailcanary {

// Where and when an awaited message was seen.
struct Arrival {
    std::string folder;
    bool junk = false;
    std::chrono::steady_clock::time_point seen;
    std::uint32_t uid = 0;
    std::string headers;  // the header fields fetched (token, Authentication-Results, Received)
};

class AwaitedMessages {
  public:
    using Clock = std::chrono::steady_clock;

    // Before sending: from now on a message with `token` is recognised as this run's.
    void expect(const std::string& token, const std::string& target, Clock::time_point now);
    // The message was not sent, or its run stopped: nobody waits for it now; if it arrives
    // anyway it is cleaned up as a leftover. The target it was for, if it was awaited.
    std::optional<std::string> abandon(const std::string& token);
    // The run gave up on it: a later arrival is counted as late. The target, if awaited.
    std::optional<std::string> give_up_as_lost(const std::string& token);
    // The run has its answer (the arrival was taken): it is done with the token.
    std::optional<std::string> finish(const std::string& token);

    bool awaited(const std::string& token) const { return pending_.contains(token); }
    // The arrival recorded for an awaited message; null until it is seen.
    const Arrival* arrival(const std::string& token) const;
    std::size_t pending_for(const std::string& target) const;
    std::size_t pending() const { return pending_.size(); }

    // What a message of ours (its token verified) found in a folder is.
    enum class Found {
        awaited,   // a run waits for it: its arrival is recorded now
        late,      // its run gave up on it as lost: count it late, clean it up
        leftover,  // nobody waits: abandoned by this process, or older than the age limit
        too_young  // nobody waits, but a twin agent's run may still: leave it for now
    };
    struct Classified {
        Found found = Found::too_young;
        std::string target;  // for awaited and late
    };
    // `internal_date`: when the server stored it (none: unknown, never old enough).
    Classified classify(const std::string& token, Arrival arrival,
                        std::optional<std::chrono::system_clock::time_point> internal_date,
                        std::chrono::system_clock::time_point now, Duration age_limit);

    // While messages are awaited, how soon to look again: 1/20 of the oldest unseen message's
    // time in flight, 25 ms at least, `poll_interval` at most; none when nothing is awaited.
    std::optional<Duration> prompt_check_interval(Clock::time_point now,
                                                  Duration poll_interval) const;

    // Tokens remembered for a while (with their target); beyond a bound the oldest are
    // forgotten, and their messages, should they come, are cleaned up as leftovers.
    static constexpr std::size_t kMaxTokensRemembered = 10'000;

  private:
    struct Pending {
        std::string target;
        std::optional<Arrival> arrival;
        Clock::time_point since;  // registered (just before sending)
    };
    class RecentTokens {
      public:
        void add(const std::string& token, const std::string& target);
        std::optional<std::string> take(const std::string& token);  // the target, if known

      private:
        std::map<std::string, std::string> targets_;
        std::deque<std::string> order_;  // oldest first; may name tokens already taken
    };

    std::optional<std::string> forget(const std::string& token);

    std::map<std::string, Pending> pending_;  // by token
    RecentTokens lost_;                       // given up on as lost: an arrival is late
    RecentTokens abandoned_;                  // not accepted, or the run stopped: nobody waits
};

}  // namespace mailcanary
