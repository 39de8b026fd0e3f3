// The connect probe: is the server up and speaking SMTP (and TLS) properly?
// Banner, EHLO, STARTTLS or implicit TLS as configured, certificate checks, QUIT.
#include "probes/connect_probe.hpp"

#include "probes/smtp_host.hpp"
#include "probes/smtp_lists.hpp"
#include "protocols/smtp_session.hpp"

namespace mailcanary {

boost::asio::awaitable<Outcome> run_connect_probe(ProbeRun run) {
    const auto& target = run.target.config;
    smtp::Dialog dialog({target.tls, target.helo, std::nullopt, std::nullopt}, run.transcript);
    co_return co_await run_smtp_session(run, dialog);
}

namespace {

class ConnectProbe final : public SmtpProbeKind {
  public:
    std::string_view name() const override { return "connect"; }
    std::span<const Phase> phases() const override { return smtp_lists::kConnectPhases; }
    std::span<const FailureReason> reasons() const override { return smtp_lists::kConnectReasons; }
    boost::asio::awaitable<Outcome> run(ProbeRun run) const override {
        return run_connect_probe(run);
    }
};

}  // namespace

const ProbeKind& connect_probe() {
    static const ConnectProbe kind;
    return kind;
}

}  // namespace mailcanary
