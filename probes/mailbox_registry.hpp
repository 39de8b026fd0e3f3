// The mailbox trackers of the configuration in force, shared by every target that delivers to
// the same mailbox and kept across reloads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>

#include "common/duration.hpp"
#include "probes/mailbox_tracker.hpp"

namespace mailcanary {

// The trackers of the configuration in force, by MailboxSettings::key(). On reload, targets
// that deliver to the same mailbox keep its tracker (its sessions and messages in flight).
// Trackers of one mailbox read through different settings (two ports, say) are two, and know
// each other's awaited messages.
class MailboxRegistry {
  public:
    MailboxRegistry(boost::asio::any_io_executor executor, RoundtripEvents& events)
        : executor_(std::move(executor)), events_(events) {}
    ~MailboxRegistry();

    // Collects the trackers of a new configuration, for `target`; commit() then stops the
    // others and labels each tracker unambiguously.
    std::shared_ptr<MailboxTracker> attach(MailboxSettings settings, Duration timeout,
                                           const std::string& target);
    void commit();
    void stop();

  private:
    struct Attached {
        std::shared_ptr<MailboxTracker> tracker;
        std::string label;         // MailboxSettings::label as the probe made it
        std::string first_target;  // of those attached, the first by name
    };

    boost::asio::any_io_executor executor_;
    RoundtripEvents& events_;
    std::shared_ptr<AwaitedTokens> awaited_ = std::make_shared<AwaitedTokens>();
    std::map<std::string, std::shared_ptr<MailboxTracker>> trackers_;
    std::map<std::string, Attached> next_;
};

}  // namespace mailcanary
