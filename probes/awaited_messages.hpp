// The bookkeeping of a mailbox's probe messages, without I/O and without a clock of its own
// (every time is given), so it is tested with made-up times: which messages runs wait for, what
// became of each (delivered, lost, abandoned), what a message found in a folder is (awaited,
// late, a leftover to clean up, in flight elsewhere, or not ours), and how soon to look again
// while messages are in flight.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.hpp"
#include "protocols/token.hpp"

namespace mailcanary {

// Where and when an awaited message was seen.
struct Arrival {
    std::string folder;
    bool junk = false;
    std::chrono::steady_clock::time_point seen;
    std::uint32_t uid = 0;
    std::string headers;  // the header fields fetched (token, Authentication-Results, Received)
};

// A delivery status notification (RFC 3464) about an awaited message, as the run reports it.
struct Bounce {
    bool failed = false;  // delivery failed for good (action "failed"); else it is delayed
    std::string status;   // e.g. "5.1.1"
    std::string diagnostic_code;
    std::string reporting_mta;
    std::string recipient;
    std::string folder;
    std::uint32_t uid = 0;
    // Its returned X-Mailcanary-Token verified: it is removed like a probe message. Tied to the
    // run by the returned Message-ID alone, it is reported but never touched.
    bool verified = false;

    bool operator==(const Bounce&) const = default;
};

// The tokens the runs of one agent await, whichever mailbox tracker they wait with: trackers
// that read one mailbox (through two ports, say) leave each other's messages alone.
class AwaitedTokens {
  public:
    void add(const std::string& token) { tokens_.insert(token); }
    void remove(const std::string& token) { tokens_.erase(token); }
    bool contains(const std::string& token) const { return tokens_.contains(token); }

  private:
    std::set<std::string> tokens_;
};

class AwaitedMessages {
  public:
    using Clock = std::chrono::steady_clock;
    using SystemClock = std::chrono::system_clock;

    // A message whose signed deadline passed is still left alone this long: its sender's clock
    // may run behind ours, and it should be the one to count a late arrival.
    static constexpr Duration kDeadlineGrace = std::chrono::minutes(5);

    // `secret` verifies tokens; `agent_awaits` is shared by every tracker of the agent.
    AwaitedMessages(std::string secret, std::shared_ptr<AwaitedTokens> agent_awaits);
    ~AwaitedMessages();
    AwaitedMessages(const AwaitedMessages&) = delete;
    AwaitedMessages& operator=(const AwaitedMessages&) = delete;

    // Before sending: from now on a message with `token`, or a delivery status notification
    // returning it or its `message_id` (without angle brackets), is recognised as this run's.
    void expect(const std::string& token, const std::string& target, Clock::time_point now,
                std::string message_id = {});
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
    // The delivery status notifications seen about an awaited message, in order; empty until one
    // is. The run ends at once when one of them is a failure.
    std::vector<Bounce> reports(const std::string& token) const;
    bool bounced(const std::string& token) const;
    std::size_t pending_for(const std::string& target) const;
    std::size_t pending() const { return pending_.size(); }

    // What a message found in a folder is, by its X-Mailcanary-Token header's value.
    enum class Found {
        awaited,    // a run of this tracker waits for it: its arrival is recorded now
        late,       // its run gave up on it as lost: count it late, clean it up
        leftover,   // nobody waits, nor can: abandoned by this process, past its signed
                    // deadline and the grace, or (an mc1 token) older than the age limit
        in_flight,  // another tracker of this agent waits for it, or another agent (or an
                    // earlier run of this one) may still: leave it for now
        not_ours    // not a token signed with this secret: never touched
    };
    struct Classified {
        Found found = Found::not_ours;
        std::string target;  // for awaited and late
    };
    // `internal_date`: when the server stored it (none: unknown, never old enough); it only
    // decides for mc1 tokens, which carry no deadline, older than `age_limit`.
    Classified classify(std::string_view token, Arrival arrival,
                        std::optional<SystemClock::time_point> internal_date,
                        SystemClock::time_point now, Duration age_limit);

    // What a delivery status notification found in a folder is, by the X-Mailcanary-Token and
    // Message-ID of the header it returns: `found` as classify() says it for a message with that
    // token (only a verified token makes it more than not_ours, so only then may it be removed),
    // and `run` the awaited token it reports on (by that verified token, or, when the header has
    // no token at all, by the Message-ID),
    // whose run has `bounce` recorded now. Nothing is recorded for a token awaited elsewhere.
    struct ClassifiedReport {
        Found found = Found::not_ours;
        std::string run;  // empty: no run of this tracker awaits the message
    };
    ClassifiedReport classify_report(std::string_view token, std::string_view message_id,
                                     Bounce bounce,
                                     std::optional<SystemClock::time_point> internal_date,
                                     SystemClock::time_point now, Duration age_limit);

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
        std::string message_id;
        std::vector<Bounce> reports;
    };
    class RecentTokens {
      public:
        void add(const std::string& token, const std::string& target);
        std::optional<std::string> take(const std::string& token);  // the target, if known
        bool contains(const std::string& token) const { return targets_.contains(token); }

      private:
        std::map<std::string, std::string> targets_;
        std::deque<std::string> order_;  // oldest first; may name tokens already taken
    };

    std::optional<std::string> forget(const std::string& token);
    // Whether a verified token's message that no run of this tracker awaits may be removed yet.
    bool unclaimed(const std::string& token, const VerifiedToken& verified,
                   std::optional<SystemClock::time_point> internal_date,
                   SystemClock::time_point now, Duration age_limit) const;

    std::string secret_;
    std::shared_ptr<AwaitedTokens> agent_awaits_;
    std::map<std::string, Pending> pending_;  // by token
    RecentTokens lost_;                       // given up on as lost: an arrival is late
    RecentTokens abandoned_;                  // not accepted, or the run stopped: nobody waits
};

}  // namespace mailcanary
