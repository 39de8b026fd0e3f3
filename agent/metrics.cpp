#include "agent/metrics.hpp"

#include <algorithm>

#include "agent/exposition.hpp"
#include "agent/process_metrics.hpp"
#include "agent/version.hpp"

namespace mailcanary {
namespace {

using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Scheduling lateness is normally well under a millisecond; seconds mean the agent is overloaded.
const prometheus::Histogram::BucketBoundaries kLatenessBuckets = {
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

// The families of the per-(target, probe) series, in the order they are exposed.
enum class ProbeFamily : std::size_t {
    success,
    duration,
    phase_duration,
    phase_last_duration,
    runs,
    failures,
    last_run,
    last_success,
    consecutive_failures,
    skipped,
    smtp_replies,
    cert_expiry,
    tls_info,
    cert_info,
    interval,
    backoff,
    scheduled,
};

struct FamilyText {
    std::string_view name;
    std::string_view help;
    std::string_view type;
};

constexpr std::array<FamilyText, 17> kProbeFamilies = {{
    {"mailcanary_probe_success", "1 if the last run of the probe succeeded, 0 if it failed.",
     "gauge"},
    {"mailcanary_probe_duration_seconds",
     "Duration of probe runs, from the start of name resolution to the end.", "histogram"},
    {"mailcanary_probe_phase_duration_seconds", "Duration of each phase of probe runs.",
     "histogram"},
    {"mailcanary_probe_phase_last_duration_seconds",
     "Duration of each phase in the last run (when phase histograms are off).", "gauge"},
    {"mailcanary_probe_runs_total", "Probe runs completed, successful or not.", "counter"},
    {"mailcanary_probe_failures_total", "Failed probe runs, by reason.", "counter"},
    {"mailcanary_probe_last_run_timestamp_seconds",
     "Unix time at which the last run of the probe finished.", "gauge"},
    {"mailcanary_probe_last_success_timestamp_seconds",
     "Unix time at which the last successful run finished.", "gauge"},
    {"mailcanary_probe_consecutive_failures",
     "Runs of the probe that failed in a row, up to the last one; 0 after a success.", "gauge"},
    {"mailcanary_probe_skipped_total",
     "Scheduled runs not started: the previous run was still going (overlap), the global cap "
     "on runs in flight was reached (concurrency), the agent was stalled past the tick "
     "(stalled), the SMTP server throttles the agent (backoff), or a budget was spent "
     "(connection_budget, message_budget).",
     "counter"},
    {"mailcanary_smtp_replies_total", "SMTP reply codes received, by the command they answered.",
     "counter"},
    {"mailcanary_tls_cert_expiry_timestamp_seconds",
     "Unix time at which the earliest-expiring certificate presented by the server expires "
     "(also when verification failed).",
     "gauge"},
    {"mailcanary_tls_info", "TLS version and cipher negotiated in the last run; always 1.",
     "gauge"},
    {"mailcanary_tls_cert_info",
     "Subject, issuer and subject alternative names of the certificate the server presented in "
     "the last run, verified or not; always 1.",
     "gauge"},
    {"mailcanary_probe_interval_seconds", "The configured interval between runs of the probe.",
     "gauge"},
    {"mailcanary_probe_backoff_seconds",
     "How much later than its interval the next run comes because runs timed out; 0 when not "
     "backing off.",
     "gauge"},
    {"mailcanary_probe_scheduled_timestamp_seconds",
     "Unix time at which the probe of the target was scheduled: agent start, or the reload that "
     "added or changed it.",
     "gauge"},
}};

// An agent-wide gauge without labels.
prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name,
                         const std::string& help) {
    return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

double seconds(std::chrono::nanoseconds duration) {
    return std::chrono::duration<double>(duration).count();
}

double unix_seconds(std::chrono::system_clock::time_point when) {
    return std::chrono::duration<double>(when.time_since_epoch()).count();
}

}  // namespace

Metrics::Metrics(const MetricsConfig& config)
    : config_(config),
      registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>()),
      lateness_(BuildHistogram()
                    .Name("mailcanary_schedule_lateness_seconds")
                    .Help("How late runs started against their planned time.")
                    .Register(*registry_)
                    .Add({}, kLatenessBuckets)),
      in_flight_(gauge(*registry_, "mailcanary_probes_in_flight", "Probe runs in progress.")),
      in_flight_limit_(gauge(*registry_, "mailcanary_probes_in_flight_limit",
                             "The cap on probe runs in flight (max_concurrent_probes).")),
      queued_(gauge(*registry_, "mailcanary_probes_queued",
                    "Probe runs due that wait for a slot under the cap on runs in flight.")),
      targets_(gauge(*registry_, "mailcanary_targets",
                     "Targets in the configuration in force that this agent's shard probes.")),
      shard_info_(BuildGauge()
                      .Name("mailcanary_shard_info")
                      .Help("Which of the agents sharing the targets this one is (index from 0 "
                            "of count); always 1.")
                      .Register(*registry_)),
      reload_successful_(gauge(*registry_, "mailcanary_config_last_reload_successful",
                               "1 if the last configuration (re)load succeeded.")),
      reload_success_time_(gauge(*registry_,
                                 "mailcanary_config_last_reload_success_timestamp_seconds",
                                 "Unix time of the last successful configuration (re)load.")) {
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

void Metrics::set_in_flight_limit(std::size_t runs) {
    in_flight_limit_.Set(static_cast<double>(runs));
}

void Metrics::set_queued(std::size_t runs) { queued_.Set(static_cast<double>(runs)); }

void Metrics::set_targets(std::size_t targets) { targets_.Set(static_cast<double>(targets)); }

void Metrics::set_shard(const Shard& shard) {
    if (shard_info_series_ != nullptr) shard_info_.Remove(shard_info_series_);
    shard_info_series_ = &shard_info_.Add(
        {{"index", std::to_string(shard.index)}, {"count", std::to_string(shard.count)}});
    shard_info_series_->Set(1);
}

void Metrics::record_reload(bool successful, std::chrono::system_clock::time_point when) {
    reload_successful_.Set(successful ? 1 : 0);
    if (successful) reload_success_time_.Set(unix_seconds(when));
}

std::string Metrics::serialize() const {
    std::string text;
    // Room for about what the last scrape wrote: a large exposition then grows without copies.
    text.reserve(last_size_.load(std::memory_order_relaxed) * 9 / 8);
    // The agent-wide series first: the scrape runs beside the loop, and a reload removes and
    // adds targets before it counts as done, so a scrape that shows the reload done (read here)
    // also shows its targets (read after).
    auto families = registry_->Collect();
    auto process = process_->Collect();
    families.insert(families.end(), std::make_move_iterator(process.begin()),
                    std::make_move_iterator(process.end()));
    append_text_format(families, text);
    std::lock_guard lock(series_mutex_);
    for (std::size_t family = 0; family < kProbeFamilies.size(); ++family) {
        const auto& [name, help, type] = kProbeFamilies[family];
        const auto header_at = text.size();
        append_family_header(text, name, help, type);
        const auto samples_at = text.size();
        for (const ProbeSeries* series : series_) series->write(family, text);
        // As prometheus-cpp does, a family without samples is left out altogether.
        if (text.size() == samples_at) text.resize(header_at);
    }
    last_size_.store(text.size(), std::memory_order_relaxed);
    return text;
}

void ProbeSeries::Histogram::observe(double value, const std::vector<double>& bounds) {
    // The first bucket whose bound is >= value (`le`), as prometheus-cpp counts.
    ++counts[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                      bounds.begin())];
    sum += value;
}

ProbeSeries::ProbeSeries(Metrics& metrics, std::string target, std::string probe,
                         std::unique_ptr<ProbeExtraSeries> extra, InstanceLabels instance)
    : metrics_(metrics),
      target_(std::move(target)),
      probe_(std::move(probe)),
      instance_(std::move(instance)),
      labels_(labels_with({})),
      extra_(std::move(extra)),
      duration_(metrics.config_.duration_buckets.size()),
      skipped_{0, 0} {
    std::lock_guard lock(metrics_.series_mutex_);
    // One series per (target, probe) at a time: the scheduler's job for the pair owns it.
    metrics_.series_.insert(this);
}

ProbeSeries::~ProbeSeries() {
    {
        std::lock_guard lock(metrics_.series_mutex_);
        if (const auto found = metrics_.series_.find(this);
            found != metrics_.series_.end() && *found == this) {
            metrics_.series_.erase(found);
        }
    }
}

std::string ProbeSeries::labels_with(
    std::initializer_list<std::pair<std::string_view, std::string_view>> extra) const {
    std::vector<std::pair<std::string_view, std::string_view>> all{{"probe", probe_},
                                                                   {"target", target_}};
    all.reserve(2 + instance_.size() + extra.size());
    for (const auto& [name, value] : instance_) all.emplace_back(name, value);
    all.insert(all.end(), extra.begin(), extra.end());
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string labels;
    for (const auto& [name, value] : all) append_label(labels, name, value);
    return labels;
}

void ProbeSeries::record_skip(SkipReason reason) {
    std::lock_guard lock(mutex_);
    auto& counter = skipped_[static_cast<std::size_t>(reason)];
    counter = counter.value_or(0) + 1;
}

void ProbeSeries::set_schedule(std::chrono::nanoseconds interval,
                               std::chrono::system_clock::time_point when) {
    std::lock_guard lock(mutex_);
    schedule_ = Schedule{seconds(interval), unix_seconds(when)};
}

void ProbeSeries::set_backoff(std::chrono::nanoseconds backoff) {
    std::lock_guard lock(mutex_);
    if (schedule_) schedule_->backoff = seconds(backoff);
}

void ProbeSeries::record_run(const Outcome& outcome, const RunMetrics& run,
                             std::chrono::nanoseconds duration,
                             std::chrono::system_clock::time_point finished) {
    {
        std::lock_guard lock(mutex_);
        const auto& config = metrics_.config_;
        ++runs_;
        duration_.observe(seconds(duration), config.duration_buckets);
        succeeded_ = outcome.success();
        consecutive_failures_ = succeeded_ ? 0 : consecutive_failures_ + 1;
        last_run_ = unix_seconds(finished);
        if (succeeded_) last_success_ = last_run_;
        if (outcome.failure) {
            auto& counter = failures_[static_cast<std::size_t>(*outcome.failure)];
            counter = counter.value_or(0) + 1;
        }
        for (std::size_t index = 0; index < kPhaseCount; ++index) {
            const auto& elapsed = run.phase_durations[index];
            if (config.phase_histograms) {
                if (!elapsed) continue;
                auto& histogram = phase_histograms_[index];
                if (!histogram) histogram.emplace(config.duration_buckets.size());
                histogram->observe(seconds(*elapsed), config.duration_buckets);
            } else {
                // A phase the last run did not reach has no last duration: a stale one would
                // mislead.
                phase_last_[index] =
                    elapsed ? std::optional<double>(seconds(*elapsed)) : std::nullopt;
            }
        }
        for (const auto& reply : run.replies) ++replies_[reply];
        record_tls(run);
    }
    if (extra_) extra_->record(outcome, run);
}

void ProbeSeries::record_tls(const RunMetrics& run) {
    if (run.cert_not_after) cert_expiry_ = unix_seconds(*run.cert_not_after);
    if (run.tls_version && run.tls_cipher) tls_info_.emplace(*run.tls_version, *run.tls_cipher);
    if (run.certificate) {
        std::string names;
        for (const auto& name : run.certificate->alt_names)
            names += (names.empty() ? "" : ",") + name;
        cert_info_ = CertInfo{run.certificate->subject, run.certificate->issuer, std::move(names)};
    }
}

void ProbeSeries::write(std::size_t family, std::string& out) const {
    const std::string_view name = kProbeFamilies[family].name;
    const auto& bounds = metrics_.config_.duration_buckets;
    std::lock_guard lock(mutex_);
    switch (static_cast<ProbeFamily>(family)) {
        case ProbeFamily::success:
            if (runs_ > 0) append_sample(out, name, labels_, succeeded_ ? 1.0 : 0.0);
            break;
        case ProbeFamily::duration:
            append_histogram(out, name, labels_, bounds, duration_.counts, duration_.sum);
            break;
        case ProbeFamily::phase_duration:
            for (std::size_t index = 0; index < kPhaseCount; ++index) {
                if (const auto& histogram = phase_histograms_[index]) {
                    append_histogram(out, name,
                                     labels_with({{"phase", to_string(kAllPhases[index])}}), bounds,
                                     histogram->counts, histogram->sum);
                }
            }
            break;
        case ProbeFamily::phase_last_duration:
            for (std::size_t index = 0; index < kPhaseCount; ++index) {
                if (const auto& last = phase_last_[index]) {
                    append_sample(out, name, labels_with({{"phase", to_string(kAllPhases[index])}}),
                                  *last);
                }
            }
            break;
        case ProbeFamily::runs:
            append_sample(out, name, labels_, runs_);
            break;
        case ProbeFamily::failures:
            for (std::size_t index = 0; index < failures_.size(); ++index) {
                if (const auto& count = failures_[index]) {
                    const auto reason = to_string(static_cast<FailureReason>(index));
                    append_sample(out, name, labels_with({{"reason", reason}}), *count);
                }
            }
            break;
        case ProbeFamily::last_run:
            if (runs_ > 0) append_sample(out, name, labels_, last_run_);
            break;
        case ProbeFamily::last_success:
            if (last_success_) append_sample(out, name, labels_, *last_success_);
            break;
        case ProbeFamily::consecutive_failures:
            if (runs_ > 0) append_sample(out, name, labels_, consecutive_failures_);
            break;
        case ProbeFamily::skipped:
            for (std::size_t index = 0; index < skipped_.size(); ++index) {
                if (const auto& count = skipped_[index]) {
                    append_sample(out, name, labels_with({{"reason", kSkipReasonNames[index]}}),
                                  *count);
                }
            }
            break;
        case ProbeFamily::smtp_replies:
            for (const auto& [reply, count] : replies_) {
                const std::string code = std::to_string(reply.second);
                append_sample(out, name, labels_with({{"code", code}, {"command", reply.first}}),
                              count);
            }
            break;
        case ProbeFamily::cert_expiry:
            if (cert_expiry_) append_sample(out, name, labels_, *cert_expiry_);
            break;
        case ProbeFamily::tls_info:
            if (tls_info_) {
                append_sample(
                    out, name,
                    labels_with({{"cipher", tls_info_->second}, {"version", tls_info_->first}}),
                    1.0);
            }
            break;
        case ProbeFamily::cert_info:
            if (cert_info_) {
                append_sample(out, name,
                              labels_with({{"issuer", cert_info_->issuer},
                                           {"sans", cert_info_->alt_names},
                                           {"subject", cert_info_->subject}}),
                              1.0);
            }
            break;
        case ProbeFamily::interval:
            if (schedule_) append_sample(out, name, labels_, schedule_->interval);
            break;
        case ProbeFamily::backoff:
            if (schedule_) append_sample(out, name, labels_, schedule_->backoff);
            break;
        case ProbeFamily::scheduled:
            if (schedule_) append_sample(out, name, labels_, schedule_->scheduled);
            break;
    }
}

}  // namespace mailcanary
