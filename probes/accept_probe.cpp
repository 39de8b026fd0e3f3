// The accept probe: is mail accepted for delivery? Connects (and logs in, when [targets.auth]
// is configured), then MAIL FROM, RCPT TO for each recipient, DATA and a real message carrying
// this run's token, QUIT. With mode = "rcpt" it stops after RCPT TO with RSET, sending nothing.
#include "probes/accept_probe.hpp"

#include "probes/auth_probe.hpp"
#include "probes/smtp_host.hpp"
#include "probes/smtp_lists.hpp"
#include "protocols/message.hpp"
#include "protocols/smtp_session.hpp"
#include "protocols/token.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_accept_probe(ProbeRun run) {
    // Nobody waits for an accept probe's message: a mailbox tracker may clean it up once the
    // run is over.
    co_return co_await submit_probe_message(
        run, make_token(run.target.token_secret, run.wall_deadline()), AfterDelivery::kept);
}

boost::asio::awaitable<Outcome> submit_probe_message(ProbeRun run, std::string token,
                                                     AfterDelivery after_delivery) {
    const TargetConfig& target = run.target.config;
    const MessageConfig& message = *target.message;  // required by the config for this probe

    std::optional<smtp::AuthRequest> auth;
    if (target.auth) {
        auto request = co_await make_auth_request(run);
        if (auto* failure = std::get_if<Outcome>(&request)) co_return std::move(*failure);
        auth = std::get<smtp::AuthRequest>(std::move(request));
    }

    const MessageSpec spec{.from = message.from,
                           .to = message.to,
                           .subject = message.subject,
                           .headers = message.headers,
                           .token = std::move(token),
                           .message_id_domain = target.helo,
                           .after_delivery = after_delivery};
    smtp::TransactionRequest transaction{
        .from = message.from,
        .to = message.to,
        .message = compose_message(spec, std::chrono::system_clock::now()),
        .rcpt_only = message.mode == AcceptMode::rcpt};
    if (!transaction.rcpt_only) run.transcript.note("Message-ID <" + message_id(spec) + ">");

    smtp::Dialog dialog({target.tls, target.helo, std::move(auth), std::move(transaction)},
                        run.transcript);
    Outcome outcome = co_await run_smtp_session(run, dialog);
    if (dialog.queue_id()) outcome.queue_id = *dialog.queue_id();
    co_return outcome;
}

namespace {

class AcceptProbe final : public SmtpProbeKind {
  public:
    std::string_view name() const override { return "accept"; }
    std::span<const Phase> phases() const override { return smtp_lists::kAcceptPhases; }
    std::span<const FailureReason> reasons() const override { return smtp_lists::kAcceptReasons; }
    std::span<const std::string_view> required_tables() const override { return kTables; }
    std::vector<std::string> hosts_logged_into(const TargetConfig& target) const override {
        return smtp_login_hosts(target);
    }
    boost::asio::awaitable<Outcome> run(ProbeRun run) const override {
        return run_accept_probe(run);
    }

  protected:
    bool sends_message(const CompiledTarget& target) const override {
        return target.config.message && target.config.message->mode == AcceptMode::data;
    }

  private:
    static constexpr std::array<std::string_view, 1> kTables{"message"};
};

}  // namespace

const ProbeKind& accept_probe() {
    static const AcceptProbe kind;
    return kind;
}

}  // namespace mailcanary
