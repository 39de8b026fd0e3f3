// The auth probe: can the configured account log in? Connects as the connect probe does
// (STARTTLS or implicit TLS as configured), authenticates with SASL, then QUIT. A rejected
// credential (5xx), a refusal by policy (auth_disabled) and a temporary failure (4xx) are
// different reasons; with expect = "reject" the rejection is what success means.
#include "probes/auth_probe.hpp"

#include "probes/smtp_host.hpp"
#include "probes/smtp_lists.hpp"
#include "protocols/smtp_session.hpp"

namespace mailcanary {

std::optional<sasl::Mechanism> sasl_mechanism(AuthMechanism mechanism) {
    switch (mechanism) {
        case AuthMechanism::automatic:
            return std::nullopt;
        case AuthMechanism::plain:
            return sasl::Mechanism::plain;
        case AuthMechanism::login:
            return sasl::Mechanism::login;
        case AuthMechanism::cram_md5:
            return sasl::Mechanism::cram_md5;
        case AuthMechanism::xoauth2:
            return sasl::Mechanism::xoauth2;
        case AuthMechanism::oauthbearer:
            return sasl::Mechanism::oauthbearer;
    }
    return std::nullopt;
}

namespace {

// For negative tests: the server must refuse these credentials. A refusal by policy
// (auth_disabled) is not one: the server would refuse the right password as well.
Outcome expect_rejection(Outcome outcome, Transcript& transcript) {
    if (outcome.failure == FailureReason::auth_rejected) {
        transcript.note("the credentials were rejected, as expected");
        return Outcome{};
    }
    if (outcome.failure == FailureReason::auth_disabled) {
        transcript.note(
            "the server refuses every login of this kind by policy: that proves "
            "nothing about these credentials");
    }
    if (outcome.success()) {
        outcome = Outcome::failed(FailureReason::auth_accepted,
                                  "the server accepted credentials it was expected to reject");
        transcript.note("failed: auth_accepted: " + outcome.detail);
    }
    return outcome;
}

}  // namespace

boost::asio::awaitable<std::variant<smtp::AuthRequest, Outcome>> make_auth_request(
    const ProbeRun& run) {
    const TargetConfig& target = run.target.config;
    const AuthConfig& auth = *target.auth;
    std::string error;
    auto secret = co_await run.target.smtp_login->secret(run.deadline, error);
    if (!secret) {
        run.transcript.note("failed: oauth_token: " + error);
        co_return Outcome::failed(FailureReason::oauth_token, "OAuth2 access token: " + error);
    }
    co_return smtp::AuthRequest{.mechanism = sasl_mechanism(auth.mechanism),
                                .username = auth.username,
                                .secret = std::move(secret->value),
                                .secret_is_token = secret->is_token,
                                .allow_plaintext = target.allow_plaintext_auth,
                                .host = target.host,
                                .port = target.port};
}

boost::asio::awaitable<Outcome> run_auth_probe(ProbeRun run) {
    const TargetConfig& target = run.target.config;
    auto request = co_await make_auth_request(run);
    if (auto* failure = std::get_if<Outcome>(&request)) co_return std::move(*failure);

    smtp::Dialog dialog(
        {target.tls, target.helo, std::get<smtp::AuthRequest>(std::move(request)), std::nullopt},
        run.transcript);
    Outcome outcome = co_await run_smtp_session(run, dialog);
    if (target.expect == Expectation::reject)
        outcome = expect_rejection(std::move(outcome), run.transcript);
    co_return outcome;
}

std::vector<std::string> smtp_login_hosts(const TargetConfig& target) {
    if (!target.auth) return {};
    return {target.host};
}

namespace {

class AuthProbe final : public SmtpProbeKind {
  public:
    std::string_view name() const override { return "auth"; }
    std::span<const Phase> phases() const override { return smtp_lists::kAuthPhases; }
    std::span<const FailureReason> reasons() const override { return smtp_lists::kAuthReasons; }
    std::span<const std::string_view> required_tables() const override { return kTables; }
    bool honours_expect() const override { return true; }
    std::vector<std::string> hosts_logged_into(const TargetConfig& target) const override {
        return smtp_login_hosts(target);
    }
    boost::asio::awaitable<Outcome> run(ProbeRun run) const override { return run_auth_probe(run); }

  private:
    static constexpr std::array<std::string_view, 1> kTables{"auth"};
};

}  // namespace

const ProbeKind& auth_probe() {
    static const AuthProbe kind;
    return kind;
}

}  // namespace mailcanary
