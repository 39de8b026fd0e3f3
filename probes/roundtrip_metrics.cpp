#include "probes/roundtrip_metrics.hpp"

namespace mailcanary {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Delivery takes from milliseconds (one host) to minutes (greylisting, a busy relay).
const prometheus::Histogram::BucketBoundaries kDeliveryBuckets = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

}  // namespace

struct RoundtripMetrics::TargetSeries {
    prometheus::Labels labels;
    prometheus::Histogram* seconds = nullptr;
    prometheus::Histogram* submission = nullptr;
    prometheus::Counter* delivered_inbox = nullptr;
    prometheus::Counter* delivered_junk = nullptr;
    prometheus::Counter* lost = nullptr;
    prometheus::Counter* bounced = nullptr;
    prometheus::Counter* late = nullptr;
    prometheus::Gauge* pending = nullptr;
    prometheus::Gauge* server_clock = nullptr;  // once a message had two dated Received headers
    // Per method, one gauge per result of the RFC's vocabulary, once a verdict was seen.
    std::array<std::vector<std::pair<std::string_view, prometheus::Gauge*>>, kAuthMethods.size()>
        auth_results;
};

RoundtripMetrics::RoundtripMetrics(prometheus::Registry& registry,
                                   std::vector<double> submission_buckets)
    : seconds_(BuildHistogram()
                   .Name("mailcanary_roundtrip_seconds")
                   .Help("Time from the server accepting the probe message (the final 250) to "
                         "the agent seeing it in the mailbox or a junk folder.")
                   .Register(registry)),
      submission_seconds_(BuildHistogram()
                              .Name("mailcanary_roundtrip_submission_seconds")
                              .Help("Time from the start of a roundtrip run to the server "
                                    "accepting its message.")
                              .Register(registry)),
      delivered_(BuildCounter()
                     .Name("mailcanary_roundtrip_delivered_total")
                     .Help("Probe messages seen delivered, by folder (inbox or junk).")
                     .Register(registry)),
      lost_(BuildCounter()
                .Name("mailcanary_roundtrip_lost_total")
                .Help("Probe messages not delivered within the roundtrip timeout.")
                .Register(registry)),
      bounced_(BuildCounter()
                   .Name("mailcanary_roundtrip_bounced_total")
                   .Help("Probe messages whose delivery a delivery status notification (a "
                         "bounce) reported failed; each is also a run failed with bounced.")
                   .Register(registry)),
      late_(BuildCounter()
                .Name("mailcanary_roundtrip_late_total")
                .Help("Probe messages counted lost that arrived later (then cleaned up).")
                .Register(registry)),
      pending_(BuildGauge()
                   .Name("mailcanary_roundtrip_pending")
                   .Help("Probe messages accepted or being sent and not yet seen delivered.")
                   .Register(registry)),
      auth_result_(BuildGauge()
                       .Name("mailcanary_roundtrip_auth_result")
                       .Help("SPF, DKIM and DMARC verdicts in the last delivered message's "
                             "Authentication-Results: 1 for its result, 0 for the others.")
                       .Register(registry)),
      server_clock_seconds_(
          BuildGauge()
              .Name("mailcanary_roundtrip_server_clock_delivery_seconds")
              .Help("Delivery time of the last message by the servers' own clocks: its newest "
                    "minus its oldest Received header date (1 s resolution; clocks may be off).")
              .Register(registry)),
      leftovers_removed_(BuildCounter()
                             .Name("mailcanary_roundtrip_leftovers_removed_total")
                             .Help("This agent's probe messages that no run waited for (left "
                                   "by a restart or an abandoned run) found and cleaned up.")
                             .Register(registry)),
      submission_buckets_(std::move(submission_buckets)) {}

RoundtripMetrics::~RoundtripMetrics() {
    while (!targets_.empty()) remove_target(targets_.begin()->first);
}

void RoundtripMetrics::add_target(const std::string& target, prometheus::Labels labels) {
    if (targets_.contains(target)) return;
    auto series = std::make_unique<TargetSeries>();
    series->labels = std::move(labels);
    const auto with = [&series](std::string name, std::string value) {
        auto more = series->labels;
        more.emplace(std::move(name), std::move(value));
        return more;
    };
    series->seconds = &seconds_.Add(series->labels, kDeliveryBuckets);
    series->submission = &submission_seconds_.Add(series->labels, submission_buckets_);
    series->delivered_inbox = &delivered_.Add(with("folder", "inbox"));
    series->delivered_junk = &delivered_.Add(with("folder", "junk"));
    series->lost = &lost_.Add(series->labels);
    series->bounced = &bounced_.Add(series->labels);
    series->late = &late_.Add(series->labels);
    series->pending = &pending_.Add(series->labels);
    targets_[target] = std::move(series);
}

void RoundtripMetrics::remove_target(const std::string& target) {
    const auto found = targets_.find(target);
    if (found == targets_.end()) return;
    TargetSeries& series = *found->second;
    seconds_.Remove(series.seconds);
    submission_seconds_.Remove(series.submission);
    delivered_.Remove(series.delivered_inbox);
    delivered_.Remove(series.delivered_junk);
    lost_.Remove(series.lost);
    bounced_.Remove(series.bounced);
    late_.Remove(series.late);
    pending_.Remove(series.pending);
    if (series.server_clock != nullptr) server_clock_seconds_.Remove(series.server_clock);
    for (const auto& results : series.auth_results) {
        for (const auto& [result, gauge] : results) auth_result_.Remove(gauge);
    }
    targets_.erase(found);
}

void RoundtripMetrics::record_run(const std::string& target, const Outcome& outcome,
                                  const RunMetrics& run) {
    const auto found = targets_.find(target);
    if (found == targets_.end()) return;
    TargetSeries& series = *found->second;
    if (run.submission) series.submission->Observe(seconds(*run.submission));
    if (outcome.failure == FailureReason::lost) series.lost->Increment();
    if (outcome.failure == FailureReason::bounced) series.bounced->Increment();
    if (!run.delivery) return;

    const auto& delivery = *run.delivery;
    series.seconds->Observe(seconds(delivery.after_acceptance));
    (delivery.junk ? series.delivered_junk : series.delivered_inbox)->Increment();
    if (delivery.by_server_clocks) {
        if (series.server_clock == nullptr) {
            series.server_clock = &server_clock_seconds_.Add(series.labels);
        }
        series.server_clock->Set(static_cast<double>(delivery.by_server_clocks->count()));
    }
    for (std::size_t index = 0; index < kAuthMethods.size(); ++index) {
        const AuthMethod method = kAuthMethods[index];
        const auto& verdict = delivery.verdicts.*verdict_member(method);
        if (!verdict) continue;  // this message said nothing about the method: keep the last
        auto& gauges = series.auth_results[index];
        if (gauges.empty()) {
            for (const std::string_view result : results_for(method)) {
                auto labels = series.labels;
                labels.emplace("method", to_string(method));
                labels.emplace("result", result);
                gauges.emplace_back(result, &auth_result_.Add(labels));
            }
        }
        for (const auto& [result, gauge] : gauges) gauge->Set(result == *verdict ? 1 : 0);
    }
}

void RoundtripMetrics::message_late(const std::string& target) {
    if (const auto found = targets_.find(target); found != targets_.end()) {
        found->second->late->Increment();
    }
}

void RoundtripMetrics::leftover_removed(const std::string& mailbox) {
    leftovers_removed_.Add({{"mailbox", mailbox}}).Increment();
}

void RoundtripMetrics::pending_changed(const std::string& target, std::size_t pending) {
    if (const auto found = targets_.find(target); found != targets_.end()) {
        found->second->pending->Set(static_cast<double>(pending));
    }
}

}  // namespace mailcanary
