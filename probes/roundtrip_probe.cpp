// The roundtrip probe: is mail delivered, and how fast? Sends a message exactly as the accept
// probe does, then waits for it in the mailbox (or a junk folder) that the target's mailbox
// tracker watches over IMAP. The run's SMTP part is bounded by the target's timeout; the wait,
// by [targets.roundtrip] timeout from the moment the server accepted the message.
#include "probes/roundtrip_probe.hpp"

#include <algorithm>

#include "probes/accept_probe.hpp"
#include "probes/auth_probe.hpp"
#include "probes/mailbox_tracker.hpp"
#include "protocols/message.hpp"

namespace mailcanary {
namespace {

// A hard bound whatever the timeout/interval ratio: a mailbox that swallows mail must not make
// the agent hold an unbounded number of runs.
constexpr std::size_t kMaxRunsInFlight = 256;

}  // namespace

std::size_t roundtrip_runs_in_flight(const TargetConfig& target) {
    if (!target.roundtrip || target.interval.count() <= 0) return 1;
    const auto wait = target.timeout + target.roundtrip->timeout;
    const auto runs = static_cast<std::size_t>(wait / target.interval) + 1;
    return std::clamp<std::size_t>(runs, 1, kMaxRunsInFlight);
}

MailboxSettings mailbox_settings_for(const CompiledTarget& target) {
    const RoundtripConfig& roundtrip = *target.config.roundtrip;
    MailboxSettings settings;
    settings.endpoint = Endpoint{.host = roundtrip.imap_host,
                                 .port = roundtrip.imap_port,
                                 .tls = roundtrip.imap_tls,
                                 .tls_options = roundtrip.tls_options,
                                 .tls_context = target.imap_tls_context};
    settings.client.tls = roundtrip.imap_tls;
    settings.client.allow_plaintext = target.config.allow_plaintext_auth;
    imap::Credentials& credentials = settings.client.credentials;
    credentials.username = roundtrip.auth.username;
    credentials.secret = target.imap_password;
    credentials.mechanism = sasl_mechanism(roundtrip.auth.mechanism);
    credentials.host = roundtrip.imap_host;
    credentials.port = roundtrip.imap_port;
    settings.oauth = target.imap_oauth;
    settings.token_file = roundtrip.auth.token_file;
    settings.mailbox = roundtrip.mailbox;
    settings.junk_folders = roundtrip.junk_folders;
    settings.cleanup = roundtrip.cleanup;
    settings.use_idle = roundtrip.idle;
    settings.poll_interval = roundtrip.poll_interval;
    settings.prompt_checks = roundtrip.prompt_checks;
    settings.token_secret = target.token_secret;
    settings.label = roundtrip.auth.username + "@" + roundtrip.imap_host + ":" +
                     std::to_string(roundtrip.imap_port) + "/" + roundtrip.mailbox;
    return settings;
}

boost::asio::awaitable<Outcome> run_roundtrip_probe(ProbeRun run) {
    const TargetConfig& target = run.target.config;
    MailboxTracker& mailbox = *run.target.mailbox;  // the agent attaches one to every such target
    const std::string token = make_token(run.target.token_secret);

    // Known before it is sent: the message may arrive before this run hears the final 250.
    mailbox.expect(token, target.name);
    Outcome outcome = co_await submit_probe_message(run, token);
    if (!outcome.success() || !run.metrics.message_accepted_at) {
        mailbox.abandon(token);
        co_return outcome;
    }

    const auto accepted = *run.metrics.message_accepted_at;
    // The server's queue id stays with every verdict: it is what to look for in its logs.
    const auto failed = [queue_id = outcome.queue_id](FailureReason reason, std::string detail) {
        Outcome failure = Outcome::failed(reason, std::move(detail));
        failure.queue_id = queue_id;
        return failure;
    };
    run.transcript.note("waiting for the message in " + mailbox.settings().label + " (" +
                        mailbox.detection() + ", up to " +
                        format_duration(target.roundtrip->timeout) + ")");
    if (run.waiting) run.waiting();
    const WaitResult result =
        co_await mailbox.wait(token, accepted + target.roundtrip->timeout, run.stop);
    switch (result.kind) {
        case WaitResult::Kind::stopped:
            co_return Outcome::stopped();
        case WaitResult::Kind::imap_failed:
            run.transcript.note("failed: " + std::string(to_string(result.failure.reason)) + ": " +
                                result.failure.detail);
            co_return failed(result.failure.reason,
                             "reading " + mailbox.settings().label + ": " + result.failure.detail);
        case WaitResult::Kind::lost: {
            const std::string detail = "not delivered to " + target.roundtrip->mailbox +
                                       " or a junk folder within " +
                                       format_duration(target.roundtrip->timeout);
            run.transcript.note("failed: lost: " + detail);
            co_return failed(FailureReason::lost, detail);
        }
        case WaitResult::Kind::arrived:
            break;
    }

    const Arrival& arrival = result.arrival;
    const auto fields = parse_header_block(arrival.headers);
    RunMetrics::Delivery delivery;
    delivery.after_acceptance = std::max(arrival.seen - accepted, std::chrono::nanoseconds(0));
    delivery.junk = arrival.junk;
    delivery.verdicts = message_verdicts(fields, target.roundtrip->authserv_id);
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

}  // namespace mailcanary
