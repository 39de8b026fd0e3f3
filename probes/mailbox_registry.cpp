#include "probes/mailbox_registry.hpp"

#include <algorithm>

namespace mailcanary {

MailboxRegistry::~MailboxRegistry() { stop(); }

std::shared_ptr<MailboxTracker> MailboxRegistry::attach(MailboxSettings settings, Duration timeout,
                                                        const std::string& target) {
    const std::string key = settings.key();
    if (auto found = next_.find(key); found != next_.end()) {
        Attached& attached = found->second;
        attached.tracker->set_age_limit(std::max(attached.tracker->age_limit(), timeout));
        attached.first_target = std::min(attached.first_target, target);
        return attached.tracker;
    }
    std::string label = settings.label;
    std::shared_ptr<MailboxTracker> tracker;
    if (auto running = trackers_.find(key); running != trackers_.end()) {
        tracker = running->second;
    } else {
        tracker =
            std::make_shared<MailboxTracker>(executor_, std::move(settings), events_, awaited_);
        tracker->start();
    }
    tracker->set_age_limit(timeout);
    next_[key] = Attached{tracker, std::move(label), target};
    return tracker;
}

void MailboxRegistry::commit() {
    for (auto& [key, tracker] : trackers_) {
        if (!next_.contains(key)) tracker->stop();
    }
    // Trackers differing only in what the label does not show (the password, TLS settings,
    // cleanup, polling) would share it: each of those also names its first target, so that a
    // log line or a series tells which one it is. Unique labels stay as they are.
    std::map<std::string, int> sharing;
    for (const auto& [key, attached] : next_) ++sharing[attached.label];
    trackers_.clear();
    for (auto& [key, attached] : next_) {
        attached.tracker->set_label(sharing[attached.label] > 1
                                        ? attached.label + " (target " + attached.first_target + ")"
                                        : attached.label);
        trackers_[key] = std::move(attached.tracker);
    }
    next_.clear();
}

void MailboxRegistry::stop() {
    for (auto& [key, tracker] : trackers_) tracker->stop();
    for (auto& [key, attached] : next_) attached.tracker->stop();
    trackers_.clear();
    next_.clear();
}

}  // namespace mailcanary
