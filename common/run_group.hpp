// The one owner of the runs in flight: it knows each run, how to ask it to stop, and which job
// it belongs to, so that a reload stops a job's runs, a shutdown stops them all and waits for
// them (cancel, wait, then cut), and the scheduler counts the slots held for its cap. Runs hold it
// by shared_ptr: a run that ends after its scheduler is gone still has its group to leave.
// Single-threaded like the agent's loop.
#pragma once

#include <utility>

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <vector>

#include "common/stop_signal.hpp"

namespace mailcanary {

class RunGroup {
  public:
    explicit RunGroup(const boost::asio::any_io_executor& executor) : all_ended_(executor) {}
    RunGroup(const RunGroup&) = delete;
    RunGroup& operator=(const RunGroup&) = delete;

    // A run's membership, from its start to its end (the destructor). `owner` is its job.
    class Member {
      public:
        Member(RunGroup& group, const void* owner, StopSignal& stop) : group_(group), stop_(stop) {
            group_.members_.push_back({owner, &stop_, true});
            ++group_.holding_slots_;
        }
        ~Member() { group_.remove(stop_); }
        Member(const Member&) = delete;
        Member& operator=(const Member&) = delete;

        // The run only waits now (for a delivery, say): it no longer counts in slots().
        void release_slot() { group_.release_slot(stop_); }

      private:
        RunGroup& group_;
        StopSignal& stop_;
    };

    // Runs in flight, and those of them that still hold a slot (use the network).
    std::size_t size() const { return members_.size(); }
    std::size_t slots() const { return holding_slots_; }

    // Asks the runs of `owner` (all runs when null) to stop; each leaves the group as it ends.
    void stop(const void* owner = nullptr) {
        std::vector<StopSignal*> stops;
        for (const Entry& entry : members_) {
            if (owner == nullptr || entry.owner == owner) stops.push_back(entry.stop);
        }
        // Requesting a stop may end a run at once, removing it from members_.
        for (StopSignal* stop : stops) stop->request();
    }

    // Waits until no run is left, or until `deadline`; true when none is left.
    boost::asio::awaitable<bool> wait_until_empty(std::chrono::steady_clock::time_point deadline) {
        if (!members_.empty()) {
            all_ended_.expires_at(deadline);
            boost::system::error_code ec;
            co_await all_ended_.async_wait(
                boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        }
        co_return members_.empty();
    }

  private:
    struct Entry {
        const void* owner;
        StopSignal* stop;
        bool holds_slot;
    };

    std::vector<Entry>::iterator entry_of(const StopSignal& stop) {
        return std::find_if(members_.begin(), members_.end(),
                            [&](const Entry& entry) { return entry.stop == &stop; });
    }
    void release_slot(const StopSignal& stop) {
        if (auto entry = entry_of(stop); entry->holds_slot) {
            entry->holds_slot = false;
            --holding_slots_;
        }
    }
    void remove(const StopSignal& stop) {
        const auto entry = entry_of(stop);
        if (entry->holds_slot) --holding_slots_;
        members_.erase(entry);
        if (members_.empty()) all_ended_.cancel();
    }

    std::vector<Entry> members_;
    std::size_t holding_slots_ = 0;
    boost::asio::steady_timer all_ended_;  // waited on by wait_until_empty, cancelled at empty
};

}  // namespace mailcanary
