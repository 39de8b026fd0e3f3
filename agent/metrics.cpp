#include "agent/metrics.hpp"

#include "agent/exposition.hpp"
#include "agent/process_metrics.hpp"
#include "agent/version.hpp"

namespace mailcanary {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Scheduling lateness is normally well under a millisecond; seconds mean the agent is overloaded.
const prometheus::Histogram::BucketBoundaries kLatenessBuckets = {
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

double unix_seconds(std::chrono::system_clock::time_point when) {
    return std::chrono::duration<double>(when.time_since_epoch()).count();
}

template <typename Metric>
void remove_if_set(prometheus::Family<Metric>& family, Metric* metric) {
    if (metric != nullptr) family.Remove(metric);
}

}  // namespace

Metrics::Metrics(const MetricsConfig& config)
    : config_(config),
      registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>()),
      success_(BuildGauge()
                   .Name("mailcanary_probe_success")
                   .Help("1 if the last run of the probe succeeded, 0 if it failed.")
                   .Register(*registry_)),
      duration_(BuildHistogram()
                    .Name("mailcanary_probe_duration_seconds")
                    .Help("Duration of probe runs, from the start of name resolution to the end.")
                    .Register(*registry_)),
      phase_duration_(BuildHistogram()
                          .Name("mailcanary_probe_phase_duration_seconds")
                          .Help("Duration of each phase of probe runs.")
                          .Register(*registry_)),
      phase_last_duration_(
          BuildGauge()
              .Name("mailcanary_probe_phase_last_duration_seconds")
              .Help("Duration of each phase in the last run (when phase histograms are off).")
              .Register(*registry_)),
      runs_(BuildCounter()
                .Name("mailcanary_probe_runs_total")
                .Help("Probe runs completed, successful or not.")
                .Register(*registry_)),
      failures_(BuildCounter()
                    .Name("mailcanary_probe_failures_total")
                    .Help("Failed probe runs, by reason.")
                    .Register(*registry_)),
      last_run_(BuildGauge()
                    .Name("mailcanary_probe_last_run_timestamp_seconds")
                    .Help("Unix time at which the last run of the probe finished.")
                    .Register(*registry_)),
      last_success_(BuildGauge()
                        .Name("mailcanary_probe_last_success_timestamp_seconds")
                        .Help("Unix time at which the last successful run finished.")
                        .Register(*registry_)),
      consecutive_failures_(BuildGauge()
                                .Name("mailcanary_probe_consecutive_failures")
                                .Help("Runs of the probe that failed in a row, up to the last "
                                      "one; 0 after a success.")
                                .Register(*registry_)),
      skipped_(BuildCounter()
                   .Name("mailcanary_probe_skipped_total")
                   .Help("Scheduled runs not started: the previous run was still going "
                         "(overlap), the global cap on runs in flight was reached "
                         "(concurrency), or the agent was stalled past the tick (stalled).")
                   .Register(*registry_)),
      smtp_replies_(BuildCounter()
                        .Name("mailcanary_smtp_replies_total")
                        .Help("SMTP reply codes received, by the command they answered.")
                        .Register(*registry_)),
      cert_expiry_(BuildGauge()
                       .Name("mailcanary_tls_cert_expiry_timestamp_seconds")
                       .Help("Unix time at which the earliest-expiring certificate presented "
                             "by the server expires (also when verification failed).")
                       .Register(*registry_)),
      tls_info_(BuildGauge()
                    .Name("mailcanary_tls_info")
                    .Help("TLS version and cipher negotiated in the last run; always 1.")
                    .Register(*registry_)),
      lateness_(BuildHistogram()
                    .Name("mailcanary_schedule_lateness_seconds")
                    .Help("How late runs started against their planned time.")
                    .Register(*registry_)
                    .Add({}, kLatenessBuckets)),
      in_flight_(BuildGauge()
                     .Name("mailcanary_probes_in_flight")
                     .Help("Probe runs in progress.")
                     .Register(*registry_)
                     .Add({})),
      targets_(BuildGauge()
                   .Name("mailcanary_targets")
                   .Help("Targets in the configuration in force.")
                   .Register(*registry_)
                   .Add({})),
      reload_successful_(BuildGauge()
                             .Name("mailcanary_config_last_reload_successful")
                             .Help("1 if the last configuration (re)load succeeded.")
                             .Register(*registry_)
                             .Add({})),
      reload_success_time_(BuildGauge()
                               .Name("mailcanary_config_last_reload_success_timestamp_seconds")
                               .Help("Unix time of the last successful configuration (re)load.")
                               .Register(*registry_)
                               .Add({})),
      roundtrip_(*registry_, config.duration_buckets) {
    BuildGauge()
        .Name("mailcanary_build_info")
        .Help("The agent's version and source revision; always 1.")
        .Register(*registry_)
        .Add({{"version", std::string(version())}, {"revision", std::string(revision())}})
        .Set(1);
}

void Metrics::observe_lateness(std::chrono::nanoseconds lateness) {
    lateness_.Observe(seconds(lateness));
}

void Metrics::set_in_flight(std::size_t runs) { in_flight_.Set(static_cast<double>(runs)); }

void Metrics::set_targets(std::size_t targets) { targets_.Set(static_cast<double>(targets)); }

void Metrics::record_reload(bool successful, std::chrono::system_clock::time_point when) {
    reload_successful_.Set(successful ? 1 : 0);
    if (successful) reload_success_time_.Set(unix_seconds(when));
}

std::string Metrics::serialize() const {
    auto families = registry_->Collect();
    auto process = process_->Collect();
    families.insert(families.end(), std::make_move_iterator(process.begin()),
                    std::make_move_iterator(process.end()));
    std::string text;
    // Room for about what the last scrape wrote: a large exposition then grows without copies.
    text.reserve(last_size_.load(std::memory_order_relaxed) * 9 / 8);
    append_text_format(families, text);
    last_size_.store(text.size(), std::memory_order_relaxed);
    return text;
}

ProbeSeries::ProbeSeries(Metrics& metrics, std::string target, std::string probe)
    : metrics_(metrics),
      labels_{{"target", target}, {"probe", probe}},
      roundtrip_(probe == "roundtrip"),
      duration_(metrics.duration_.Add(labels_, metrics.config_.duration_buckets)),
      runs_(metrics.runs_.Add(labels_)),
      skipped_{&metrics.skipped_.Add(labels_with({{"reason", "overlap"}})),
               &metrics.skipped_.Add(labels_with({{"reason", "concurrency"}})), nullptr} {
    if (roundtrip_) metrics_.roundtrip_.add_target(target);
}

ProbeSeries::~ProbeSeries() {
    if (roundtrip_) metrics_.roundtrip_.remove_target(labels_.at("target"));
    metrics_.duration_.Remove(&duration_);
    metrics_.runs_.Remove(&runs_);
    remove_if_set(metrics_.success_, success_);
    remove_if_set(metrics_.last_run_, last_run_);
    remove_if_set(metrics_.last_success_, last_success_);
    remove_if_set(metrics_.consecutive_failures_, consecutive_failures_);
    for (auto* counter : skipped_) remove_if_set(metrics_.skipped_, counter);
    for (auto* histogram : phase_histograms_) remove_if_set(metrics_.phase_duration_, histogram);
    for (auto* gauge : phase_last_) remove_if_set(metrics_.phase_last_duration_, gauge);
    for (auto* counter : failures_) remove_if_set(metrics_.failures_, counter);
    for (auto& [key, counter] : replies_) metrics_.smtp_replies_.Remove(counter);
    remove_if_set(metrics_.cert_expiry_, cert_expiry_);
    remove_if_set(metrics_.tls_info_, tls_info_);
}

prometheus::Labels ProbeSeries::labels_with(
    std::initializer_list<std::pair<const std::string, std::string>> extra) const {
    prometheus::Labels labels = labels_;
    labels.insert(extra);
    return labels;
}

void ProbeSeries::record_skip(SkipReason reason) {
    auto*& counter = skipped_[static_cast<std::size_t>(reason)];
    if (counter == nullptr) counter = &metrics_.skipped_.Add(labels_with({{"reason", "stalled"}}));
    counter->Increment();
}

void ProbeSeries::record_run(const Outcome& outcome, const RunMetrics& run,
                             std::chrono::nanoseconds duration,
                             std::chrono::system_clock::time_point finished) {
    runs_.Increment();
    duration_.Observe(seconds(duration));
    if (success_ == nullptr) {
        success_ = &metrics_.success_.Add(labels_);
        last_run_ = &metrics_.last_run_.Add(labels_);
        consecutive_failures_ = &metrics_.consecutive_failures_.Add(labels_);
    }
    success_->Set(outcome.success() ? 1 : 0);
    if (outcome.success()) {
        consecutive_failures_->Set(0);
    } else {
        consecutive_failures_->Increment();
    }
    last_run_->Set(unix_seconds(finished));
    if (outcome.success()) {
        if (last_success_ == nullptr) last_success_ = &metrics_.last_success_.Add(labels_);
        last_success_->Set(unix_seconds(finished));
    }
    if (outcome.failure) {
        auto*& counter = failures_[static_cast<std::size_t>(*outcome.failure)];
        if (counter == nullptr) {
            counter = &metrics_.failures_.Add(
                labels_with({{"reason", std::string(to_string(*outcome.failure))}}));
        }
        counter->Increment();
    }

    for (const Phase phase : kAllPhases) {
        const auto index = static_cast<std::size_t>(phase);
        const auto& elapsed = run.phase_durations[index];
        if (!elapsed) continue;
        const auto phase_labels = labels_with({{"phase", std::string(to_string(phase))}});
        if (metrics_.config_.phase_histograms) {
            auto*& histogram = phase_histograms_[index];
            if (histogram == nullptr) {
                histogram =
                    &metrics_.phase_duration_.Add(phase_labels, metrics_.config_.duration_buckets);
            }
            histogram->Observe(seconds(*elapsed));
        } else {
            auto*& gauge = phase_last_[index];
            if (gauge == nullptr) gauge = &metrics_.phase_last_duration_.Add(phase_labels);
            gauge->Set(seconds(*elapsed));
        }
    }
    // A phase the last run did not reach has no last duration: a stale one would mislead.
    if (!metrics_.config_.phase_histograms) {
        for (std::size_t index = 0; index < kPhaseCount; ++index) {
            if (phase_last_[index] != nullptr && !run.phase_durations[index]) {
                metrics_.phase_last_duration_.Remove(std::exchange(phase_last_[index], nullptr));
            }
        }
    }

    for (const auto& [command, code] : run.replies) {
        auto*& counter = replies_[{command, code}];
        if (counter == nullptr) {
            counter = &metrics_.smtp_replies_.Add(
                labels_with({{"command", std::string(command)}, {"code", std::to_string(code)}}));
        }
        counter->Increment();
    }
    record_tls(run);
    if (roundtrip_) metrics_.roundtrip_.record_run(labels_.at("target"), outcome, run);
}

void ProbeSeries::record_tls(const RunMetrics& run) {
    if (run.cert_not_after) {
        if (cert_expiry_ == nullptr) cert_expiry_ = &metrics_.cert_expiry_.Add(labels_);
        cert_expiry_->Set(unix_seconds(*run.cert_not_after));
    }
    if (run.tls_version && run.tls_cipher) {
        std::pair<std::string, std::string> negotiated{*run.tls_version, *run.tls_cipher};
        if (tls_info_ != nullptr && negotiated != tls_info_labels_) {
            metrics_.tls_info_.Remove(std::exchange(tls_info_, nullptr));
        }
        if (tls_info_ == nullptr) {
            tls_info_ = &metrics_.tls_info_.Add(
                labels_with({{"version", negotiated.first}, {"cipher", negotiated.second}}));
            tls_info_->Set(1);
            tls_info_labels_ = std::move(negotiated);
        }
    }
}

}  // namespace mailcanary
