#include "probes/mailbox_registry.hpp"

#include <algorithm>

namespace mailcanary {

MailboxRegistry::~MailboxRegistry() { stop(); }

std::shared_ptr<MailboxTracker> MailboxRegistry::attach(MailboxSettings settings,
                                                        Duration timeout) {
    const std::string key = settings.key();
    if (auto found = next_.find(key); found != next_.end()) {
        found->second->set_age_limit(std::max(found->second->age_limit(), timeout));
        return found->second;
    }
    std::shared_ptr<MailboxTracker> tracker;
    if (auto running = trackers_.find(key); running != trackers_.end()) {
        tracker = running->second;
    } else {
        tracker =
            std::make_shared<MailboxTracker>(executor_, std::move(settings), events_, awaited_);
        tracker->start();
    }
    tracker->set_age_limit(timeout);
    next_[key] = tracker;
    return tracker;
}

void MailboxRegistry::commit() {
    for (auto& [key, tracker] : trackers_) {
        if (!next_.contains(key)) tracker->stop();
    }
    trackers_ = std::move(next_);
    next_.clear();
}

void MailboxRegistry::stop() {
    for (auto& [key, tracker] : trackers_) tracker->stop();
    for (auto& [key, tracker] : next_) tracker->stop();
    trackers_.clear();
    next_.clear();
}

}  // namespace mailcanary
