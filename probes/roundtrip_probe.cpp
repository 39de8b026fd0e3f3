// The roundtrip probe: is mail delivered, and how fast? Sends a message exactly as the accept
// probe does, then waits for it in the mailbox (or a junk folder) that the target's mailbox
// tracker watches over IMAP. The run's SMTP part is bounded by the target's timeout; the wait,
// by [targets.roundtrip] timeout from the moment the server accepted the message.
#include "probes/roundtrip_probe.hpp"

#include <algorithm>

#include "common/joined.hpp"
#include "probes/accept_probe.hpp"
#include "probes/auth_probe.hpp"
#include "probes/authserv_id_watch.hpp"
#include "probes/imap_account.hpp"
#include "probes/roundtrip_metrics.hpp"
#include "probes/settings_reader.hpp"
#include "probes/smtp_host.hpp"
#include "probes/smtp_lists.hpp"
#include "probes/validators.hpp"
#include "protocols/message.hpp"
#include "protocols/tls_contexts.hpp"
#include "protocols/token.hpp"

namespace mailcanary {
namespace {

constexpr std::string_view kName = "roundtrip";
// A hard bound whatever the timeout/interval ratio: a mailbox that swallows mail must not make
// the agent hold an unbounded number of runs.
constexpr std::size_t kMaxRunsInFlight = 256;
// Polling more often than this hammers the server; less often, and delivery times are noise.
constexpr Duration kShortestPollInterval = std::chrono::milliseconds(10);
constexpr Duration kLongestPollInterval = std::chrono::hours(1);

// [targets.roundtrip] holds its IMAP login's credentials itself, under the keys of [targets.auth].
constexpr std::array<std::string_view, 14> kOwnKeys{
    "imap_host",     "imap_port",   "imap_tls",      "tls_options",   "mailbox",
    "junk_folders",  "timeout",     "cleanup",       "idle",          "poll_interval",
    "prompt_checks", "authserv_id", "delete_method", "bounce_mailbox"};
constexpr auto kKeys = joined(kOwnKeys, kAuthKeys);
constexpr std::array<std::string_view, 2> kTables{"message", "roundtrip"};
// The IMAP wait is no phase of its own: its time is the round trip's (mailcanary_roundtrip_*).
constexpr auto kReasons =
    joined(smtp_lists::kAcceptReasons,
           std::array{FailureReason::junk, FailureReason::lost, FailureReason::bounced,
                      FailureReason::imap_connect, FailureReason::imap_tls,
                      FailureReason::imap_auth, FailureReason::imap_protocol});

constexpr std::array<Choice<CleanupMode>, 3> kCleanupModes{{
    {"delete", CleanupMode::delete_message},
    {"trash", CleanupMode::trash},
    {"keep", CleanupMode::keep},
}};

constexpr std::array<Choice<DeleteMethod>, 3> kDeleteMethods{{
    {"auto", DeleteMethod::automatic},
    {"expunge", DeleteMethod::expunge},
    {"via_trash", DeleteMethod::via_trash},
}};

std::optional<std::string> check_poll_interval(Duration interval) {
    if (interval >= kShortestPollInterval && interval <= kLongestPollInterval) return std::nullopt;
    return "must be between " + format_duration(kShortestPollInterval) + " and " +
           format_duration(kLongestPollInterval) + ", got " + format_duration(interval);
}

// What a target's runs use, built at load; the tracker is attached once the load compiled.
struct RoundtripState {
    RoundtripConfig options;
    Endpoint imap;
    std::shared_ptr<const CredentialSource> login;
    std::shared_ptr<MailboxTracker> mailbox;
    // Runs share it (the state is const to them): it counts deliveries across runs.
    std::shared_ptr<AuthservIdWatch> authserv_watch = std::make_shared<AuthservIdWatch>();
};

// The mailbox sessions and the mailcanary_roundtrip_* families, shared by every roundtrip
// target for the agent's life.
struct RoundtripResources final : SharedResource {
    explicit RoundtripResources(ProbeResources& resources)
        : metrics(resources.registry(), resources.duration_buckets()),
          mailboxes(resources.executor(), metrics) {}
    void commit() override { mailboxes.commit(); }
    void stop() override { mailboxes.stop(); }

    RoundtripMetrics metrics;
    MailboxRegistry mailboxes;
};

RoundtripResources& roundtrip_resources(ProbeResources& resources) {
    return resources.get<RoundtripResources>(
        [&] { return std::make_unique<RoundtripResources>(resources); });
}

class RoundtripSeries final : public ProbeExtraSeries {
  public:
    RoundtripSeries(RoundtripMetrics& metrics, const TargetConfig& instance)
        : metrics_(metrics), target_(instance.instance_key()) {
        metrics_.add_target(target_, instance_series_labels(instance));
    }
    ~RoundtripSeries() override { metrics_.remove_target(target_); }
    void record(const Outcome& outcome, const RunMetrics& run) override {
        metrics_.record_run(target_, outcome, run);
    }

  private:
    RoundtripMetrics& metrics_;
    std::string target_;
};

AfterDelivery after_delivery(CleanupMode cleanup) {
    switch (cleanup) {
        case CleanupMode::delete_message:
            return AfterDelivery::removed;
        case CleanupMode::trash:
            return AfterDelivery::trashed;
        case CleanupMode::keep:
            break;
    }
    return AfterDelivery::kept;
}

// The mailbox a roundtrip target delivers to, as its tracker needs it.
MailboxSettings mailbox_settings_for(const CompiledTarget& target, const RoundtripState& state,
                                     ProbeResources& resources) {
    const RoundtripConfig& roundtrip = state.options;
    MailboxSettings settings;
    settings.endpoint = state.imap;
    settings.client.tls = roundtrip.imap_tls;
    settings.client.allow_plaintext = target.config.allow_plaintext_auth;
    imap::Credentials& credentials = settings.client.credentials;
    credentials.username = roundtrip.auth.username;
    credentials.mechanism = sasl_mechanism(roundtrip.auth.mechanism);
    credentials.host = roundtrip.imap_host;
    credentials.port = roundtrip.imap_port;
    settings.login = state.login;
    settings.mailbox = roundtrip.mailbox;
    settings.junk_folders = roundtrip.junk_folders;
    settings.cleanup = roundtrip.cleanup;
    settings.delete_method = roundtrip.delete_method;
    settings.use_idle = roundtrip.idle;
    settings.poll_interval = roundtrip.poll_interval;
    settings.prompt_checks = roundtrip.prompt_checks;
    settings.token_secret = target.token_secret;
    settings.bounce_folder = roundtrip.bounce_mailbox;
    settings.account = imap_accounts(resources).account(roundtrip.imap_host, roundtrip.imap_port,
                                                        roundtrip.auth.username);
    settings.label = roundtrip.auth.username + "@" + roundtrip.imap_host + ":" +
                     std::to_string(roundtrip.imap_port) + "/" + roundtrip.mailbox;
    return settings;
}

// A delivery status notification about the run's message, in its transcript: what the
// reporting MTA said, and whether it was cleaned up or left (tied by Message-ID alone).
void note_report(const Bounce& report, Transcript& transcript) {
    transcript.note(std::string(report.failed ? "bounce" : "delay notice (not a failure)") +
                    " from " + report.reporting_mta + " in " + report.folder + " (UID " +
                    std::to_string(report.uid) + "): Status " + report.status + ", recipient " +
                    report.recipient + ", Diagnostic-Code: " + report.diagnostic_code);
    if (!report.verified) {
        transcript.note("the report returns this run's Message-ID but no verified token: left in " +
                        report.folder);
    }
}

boost::asio::awaitable<Outcome> run_roundtrip(ProbeRun run) {
    const TargetConfig& target = run.target.config;
    const RoundtripState& state = run.target.state_of<RoundtripState>(kName);
    const RoundtripConfig& options = state.options;
    MailboxTracker& mailbox = *state.mailbox;  // attached with the load
    const std::string& label = mailbox.settings().label;

    // A message that cannot be read back would only be left in the mailbox: send none.
    if (const auto unreadable = co_await mailbox.login_failure(run.deadline, run.stop)) {
        const std::string reason(to_string(unreadable->reason));
        run.transcript.note("not sent: cannot log in to " + label + " (" + reason +
                            "): " + unreadable->detail);
        co_return Outcome::failed(unreadable->reason,
                                  "reading " + label + ": " + unreadable->detail);
    }
    if (run.stop.requested()) co_return Outcome::stopped();
    // The run waits for its message until its SMTP deadline plus the timeout at the latest:
    // signed into the token, that tells any agent sharing the mailbox when it is abandoned.
    const std::string token =
        make_token(run.target.token_secret, run.wall_deadline() + options.timeout);

    // Known before it is sent: the message may arrive before this run hears the final 250.
    // By instance: late messages, pending counts and bounces go to the instance's series.
    mailbox.expect(token, target.instance_key(), message_id(token, target.helo));
    Outcome outcome = co_await submit_probe_message(run, token, after_delivery(options.cleanup));
    if (!outcome.success() || !run.metrics.message_accepted_at) {
        mailbox.abandon(token);
        co_return outcome;
    }

    const auto accepted = *run.metrics.message_accepted_at;
    // The server's queue id stays with every verdict: it is what to look for in its logs.
    const auto failed = [queue_id = outcome.queue_id](FailureReason reason,
                                                      const std::string& detail) {
        Outcome failure = Outcome::failed(reason, detail);
        failure.queue_id = queue_id;
        return failure;
    };
    run.transcript.note("waiting for the message in " + label + " (" + mailbox.detection() +
                        ", up to " + format_duration(options.timeout) + ")");
    if (run.waiting) run.waiting();
    const WaitResult result =
        co_await mailbox.wait(token, accepted + options.timeout, run.stop, run.transcript);
    for (const Bounce& report : result.reports) note_report(report, run.transcript);
    switch (result.kind) {
        case WaitResult::Kind::stopped:
            co_return Outcome::stopped();
        case WaitResult::Kind::imap_failed:
            run.transcript.note("failed: " + std::string(to_string(result.failure.reason)) + ": " +
                                result.failure.detail);
            co_return failed(result.failure.reason,
                             "reading " + label + ": " + result.failure.detail);
        case WaitResult::Kind::lost: {
            const std::string detail = "not delivered to " + options.mailbox +
                                       " or a junk folder within " +
                                       format_duration(options.timeout);
            run.transcript.note("failed: lost: " + detail);
            co_return failed(FailureReason::lost, detail);
        }
        case WaitResult::Kind::bounced: {
            const auto failure = std::find_if(result.reports.begin(), result.reports.end(),
                                              [](const Bounce& report) { return report.failed; });
            const std::string detail = "bounced by " + failure->reporting_mta + ": " +
                                       failure->status + " " + failure->diagnostic_code;
            run.transcript.note("failed: bounced: " + detail);
            co_return failed(FailureReason::bounced, detail);
        }
        case WaitResult::Kind::arrived:
            break;
    }

    const Arrival& arrival = result.arrival;
    const auto fields = parse_header_block(arrival.headers);
    RunMetrics::Delivery delivery;
    delivery.after_acceptance = std::max(arrival.seen - accepted, std::chrono::nanoseconds(0));
    delivery.junk = arrival.junk;
    delivery.verdicts = message_verdicts(fields, options.authserv_id);
    if (!options.authserv_id.empty()) {
        state.authserv_watch->observe(fields, options.authserv_id, target.name, run.transcript);
    }
    delivery.by_server_clocks = received_span(fields);
    run.metrics.delivery = delivery;
    const std::string where = "in " + arrival.folder + " after " +
                              format_milliseconds(delivery.after_acceptance) + " (UID " +
                              std::to_string(arrival.uid) + ")";
    run.transcript.note("delivered " + where);
    if (arrival.junk) {
        run.transcript.note("failed: junk: delivered to a junk folder");
        co_return failed(FailureReason::junk, "delivered to the junk folder " + where);
    }
    co_return outcome;
}

// A poll interval not shorter than the timeout would look into the mailbox at most once. The
// error points at poll_interval if the table sets it, else at the timeout.
void check_poll_below_timeout(SettingsReader& reader, const Setting<Duration>& poll_interval,
                              const Setting<Duration>& timeout, const RoundtripConfig& roundtrip,
                              std::string_view path) {
    if (!poll_interval.present() && !timeout.present()) return;
    if ((poll_interval.present() && !poll_interval.value) ||
        (timeout.present() && !timeout.value) || roundtrip.poll_interval < roundtrip.timeout) {
        return;
    }
    const auto describe = [](const Setting<Duration>& setting, Duration value) {
        return format_duration(value) + (setting.present() ? "" : " (the default)");
    };
    const bool blame_poll = poll_interval.present();
    reader.error((blame_poll ? poll_interval : timeout).node->source(),
                 child_key(path, blame_poll ? "poll_interval" : "timeout"),
                 "poll_interval " + describe(poll_interval, roundtrip.poll_interval) +
                     " must be shorter than timeout " + describe(timeout, roundtrip.timeout));
}

class RoundtripProbe final : public SmtpProbeKind {
  public:
    std::string_view name() const override { return kName; }
    std::span<const Phase> phases() const override { return smtp_lists::kAcceptPhases; }
    std::span<const FailureReason> reasons() const override { return kReasons; }
    std::span<const std::string_view> required_tables() const override { return kTables; }
    bool has_own_table() const override { return true; }

    // The IMAP mailbox the message is followed into. Its defaults are RoundtripConfig's,
    // except for those that depend on the target or on another key.
    std::shared_ptr<const ProbeOptions> read_options(SettingsReader& reader,
                                                     const toml::table& table,
                                                     const std::string& path,
                                                     const TargetConfig& target) const override {
        reader.check_known_keys(table, path, kKeys);
        RoundtripConfig roundtrip;
        ImapServer server = reader.read_imap_server(
            table, path, {"imap_host", "imap_port", "imap_tls"}, target.host);
        roundtrip.imap_host = std::move(server.host);
        roundtrip.imap_port = server.port;
        roundtrip.imap_tls = server.tls;
        roundtrip.tls_options = std::move(server.tls_options);
        roundtrip.auth = std::move(server.auth);
        roundtrip.mailbox = reader
                                .checked(reader.read<std::string>(table, path, "mailbox"), path,
                                         "mailbox", check_mailbox_name)
                                .value.value_or(roundtrip.mailbox);
        roundtrip.bounce_mailbox =
            reader
                .checked(reader.read<std::string>(table, path, "bounce_mailbox"), path,
                         "bounce_mailbox", check_mailbox_name)
                .value.value_or("");
        roundtrip.junk_folders = reader
                                     .read_string_list(table, path, "junk_folders", "folder names",
                                                       check_mailbox_name, EmptyList::allowed)
                                     .value;
        const Setting<Duration> timeout = reader.read_duration(table, path, "timeout");
        roundtrip.timeout = timeout.value.value_or(roundtrip.timeout);
        roundtrip.cleanup =
            reader.read_choice(table, path, "cleanup", kCleanupModes, "cleanup mode")
                .value.value_or(CleanupMode::delete_message);
        const Setting<DeleteMethod> delete_method =
            reader.read_choice(table, path, "delete_method", kDeleteMethods, "delete method");
        roundtrip.delete_method = delete_method.value.value_or(DeleteMethod::automatic);
        if (delete_method.present() && roundtrip.cleanup != CleanupMode::delete_message) {
            reader.error(delete_method.node->source(), child_key(path, "delete_method"),
                         "says how cleanup = " + in_quotes("delete") +
                             " deletes: set it only with that cleanup mode");
        }
        roundtrip.idle = reader.read<bool>(table, path, "idle").value.value_or(true);
        roundtrip.prompt_checks =
            reader.read<bool>(table, path, "prompt_checks").value.value_or(true);
        const Setting<Duration> poll_interval =
            reader.checked(reader.read_duration(table, path, "poll_interval"), path,
                           "poll_interval", check_poll_interval);
        roundtrip.poll_interval = poll_interval.value.value_or(roundtrip.poll_interval);
        check_poll_below_timeout(reader, poll_interval, timeout, roundtrip, path);
        roundtrip.authserv_id =
            reader
                .checked(reader.read_non_empty_string(table, path, "authserv_id"), path,
                         "authserv_id", check_authserv_id)
                .value.value_or("");
        return std::make_shared<TypedOptions<RoundtripConfig>>(std::move(roundtrip));
    }

    void check_target(SettingsReader& reader, const toml::table& table, const std::string& path,
                      const TargetConfig& /*target*/) const override {
        const toml::node* mode = table.at_path("message.mode").node();
        if (mode == nullptr || mode->value<std::string>() != "rcpt") return;
        reader.error(mode->source(), child_key(child_key(path, "message"), "mode"),
                     in_quotes("rcpt") + " sends no message, and the " + in_quotes(kName) +
                         " probe follows one: use mode = " + in_quotes("data"));
    }

    std::vector<std::string> hosts_logged_into(const TargetConfig& target) const override {
        std::vector<std::string> hosts = smtp_login_hosts(target);
        if (const auto* options = target.probe_options.find<RoundtripConfig>(kName)) {
            hosts.push_back(options->imap_host);
        }
        return hosts;
    }

    bool compile(CompiledTarget& target, LoadContext& load,
                 const std::string& path) const override {
        const auto* options = target.config.probe_options.find<RoundtripConfig>(kName);
        auto state = std::make_shared<RoundtripState>();
        state->options = *options;
        state->imap = Endpoint{.host = options->imap_host,
                               .port = options->imap_port,
                               .tls = options->imap_tls,
                               .tls_options = options->tls_options,
                               .tls_context = nullptr,
                               .family = target.config.other_server_family()};
        const std::string key = child_key(path, kName);
        if (!load.complete_endpoint(state->imap, key)) return false;
        auto login = load.load_login(options->auth, key);
        if (!login) return false;
        state->login = std::make_shared<const CredentialSource>(std::move(*login));
        target.kind_states[std::string(kName)] = std::move(state);
        return true;
    }

    void attach(CompiledTarget& target, ProbeResources& resources) const override {
        SmtpProbeKind::attach(target, resources);
        auto& state = target.state_of<RoundtripState>(kName);
        state.mailbox = roundtrip_resources(resources).mailboxes.attach(
            mailbox_settings_for(target, state, resources), state.options.timeout,
            target.config.name);
    }

    // Runs overlap when the interval is shorter than delivery takes: each waits for its own
    // message while the next is sent.
    std::size_t max_runs_in_flight(const CompiledTarget& target) const override {
        const auto* options = target.config.probe_options.find<RoundtripConfig>(kName);
        if (options == nullptr || target.config.interval.count() <= 0) return 1;
        const auto wait = target.config.timeout + options->timeout;
        const auto runs = static_cast<std::size_t>(wait / target.config.interval) + 1;
        return std::clamp<std::size_t>(runs, 1, kMaxRunsInFlight);
    }

    boost::asio::awaitable<Outcome> run(ProbeRun run) const override { return run_roundtrip(run); }

    std::unique_ptr<ProbeExtraSeries> extra_series(ProbeResources& resources,
                                                   const TargetConfig& instance) const override {
        return std::make_unique<RoundtripSeries>(roundtrip_resources(resources).metrics, instance);
    }

  protected:
    bool sends_message(const CompiledTarget& /*target*/) const override { return true; }
};

}  // namespace

RoundtripEvents& roundtrip_events(ProbeResources& resources) {
    return roundtrip_resources(resources).metrics;
}

const ProbeKind& roundtrip_probe() {
    static const RoundtripProbe kind;
    return kind;
}

}  // namespace mailcanary
