#include "probes/imap_probe.hpp"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <variant>

#include "common/joined.hpp"
#include "probes/auth_probe.hpp"
#include "probes/imap_account.hpp"
#include "probes/settings_reader.hpp"
#include "probes/validators.hpp"
#include "protocols/imap_response.hpp"
#include "protocols/imap_session.hpp"
#include "protocols/tls_contexts.hpp"

namespace mailcanary {
namespace {

constexpr std::string_view kName = "imap";
constexpr std::string_view kMailboxMessages = "mailbox_messages";  // in RunMetrics::kind_values
// Once SELECT has answered the result is known: LOGOUT is a courtesy, bounded like SMTP's QUIT.
constexpr auto kLogoutGrace = std::chrono::seconds(1);

constexpr std::array<std::string_view, 6> kOwnKeys{
    "host", "port", "tls", "tls_options", "mailbox", "allow_plaintext_auth"};
constexpr auto kKeys = joined(kOwnKeys, kAuthKeys);
constexpr std::array<std::string_view, 1> kTables{kName};

// In the order a run meets them (tls_handshake first with implicit TLS, after starttls else).
constexpr std::array kPhases{Phase::resolve,  Phase::connect,    Phase::tls_handshake,
                             Phase::greeting, Phase::capability, Phase::starttls,
                             Phase::auth,     Phase::select,     Phase::logout};
constexpr std::array kReasons{
    FailureReason::dns,
    FailureReason::connect_refused,
    FailureReason::connect_timeout,
    FailureReason::network,
    FailureReason::timeout,
    FailureReason::closed,
    FailureReason::protocol,
    FailureReason::greeting_rejected,
    FailureReason::tls_handshake,
    FailureReason::tls_cert_untrusted,
    FailureReason::tls_cert_expired,
    FailureReason::tls_cert_hostname,
    FailureReason::starttls_unavailable,
    FailureReason::starttls_rejected,
    FailureReason::auth_unavailable,
    FailureReason::auth_rejected,
    FailureReason::auth_disabled,
    FailureReason::auth_tempfail,
    FailureReason::auth_insecure,
    FailureReason::oauth_token,
    FailureReason::select_rejected,
    FailureReason::throttled,
    FailureReason::descriptors_exhausted,
};

// What a target's runs use, built at load.
struct ImapState {
    ImapOptions options;
    Endpoint endpoint;
    std::optional<CredentialSource> login;
    std::shared_ptr<ImapAccount> account;  // attached with the load
};

Outcome held_back(Transcript& transcript, const std::string& detail) {
    transcript.note("not connected: throttled: " + detail);
    return Outcome::failed(FailureReason::throttled, detail);
}

// Whether the run may open a session to the account now: not while the server throttles it,
// nor beyond the account's sessions (waiting for one to end until the run's deadline).
boost::asio::awaitable<std::variant<ImapAccount::Slot, Outcome>> session_slot(
    ProbeRun& run, ImapAccount& account) {
    if (const auto until = account.backoff_until()) {
        co_return held_back(run.transcript,
                            "the server throttles " + account.label() +
                                ": backing off for another " +
                                format_duration(std::chrono::ceil<std::chrono::seconds>(
                                    *until - std::chrono::steady_clock::now())));
    }
    boost::asio::steady_timer wait(co_await boost::asio::this_coro::executor, run.deadline);
    run.stop.on_request([&wait] { wait.cancel(); });
    auto slot = co_await account.take_slot(wait);
    run.stop.clear();
    if (slot) co_return std::move(*slot);
    if (run.stop.requested()) co_return Outcome::stopped();
    co_return held_back(run.transcript, "all " + std::to_string(account.max_sessions()) +
                                            " sessions to " + account.label() +
                                            " the agent allows at once are in use");
}

// mailcanary_imap_mailbox_messages, shared by every imap target for the agent's life.
struct ImapResources final : SharedResource {
    explicit ImapResources(prometheus::Registry& registry)
        : messages(prometheus::BuildGauge()
                       .Name("mailcanary_imap_mailbox_messages")
                       .Help("Messages in the mailbox the imap probe selected, at its last "
                             "successful SELECT.")
                       .Register(registry)) {}
    prometheus::Family<prometheus::Gauge>& messages;
};

// Absent until the first successful SELECT; removed with the target.
class ImapSeries final : public ProbeExtraSeries {
  public:
    ImapSeries(prometheus::Family<prometheus::Gauge>& family, prometheus::Labels labels)
        : family_(family), labels_(std::move(labels)) {}
    ~ImapSeries() override {
        if (messages_ != nullptr) family_.Remove(messages_);
    }
    ImapSeries(const ImapSeries&) = delete;
    ImapSeries& operator=(const ImapSeries&) = delete;

    void record(const Outcome& /*outcome*/, const RunMetrics& run) override {
        for (const auto& [name, value] : run.kind_values) {
            if (name != kMailboxMessages) continue;
            if (messages_ == nullptr) messages_ = &family_.Add(labels_);
            messages_->Set(value);
        }
    }

  private:
    prometheus::Family<prometheus::Gauge>& family_;
    prometheus::Labels labels_;
    prometheus::Gauge* messages_ = nullptr;
};

// The last EXISTS count among a command's untagged responses.
std::optional<std::uint32_t> exists_count(const imap::Completion& completion) {
    std::optional<std::uint32_t> count;
    for (const imap::Response& response : completion.untagged) {
        if (response.name == "EXISTS" && response.number) count = response.number;
    }
    return count;
}

boost::asio::awaitable<Outcome> run_imap(ProbeRun run) {
    const ImapState& state = run.target.state_of<ImapState>(kName);
    const ImapOptions& options = state.options;

    std::string error;
    auto secret = co_await state.login->secret(run.deadline, error);
    if (!secret) {
        run.transcript.note("failed: oauth_token: " + error);
        co_return Outcome::failed(FailureReason::oauth_token, "OAuth2 access token: " + error);
    }
    imap::ClientOptions client;
    client.tls = options.tls;
    client.allow_plaintext = options.allow_plaintext_auth;
    client.credentials = imap::Credentials{.username = options.auth.username,
                                           .secret = std::move(secret->value),
                                           .secret_is_token = secret->is_token,
                                           .mechanism = sasl_mechanism(options.auth.mechanism),
                                           .host = options.host,
                                           .port = options.port};

    auto slot = co_await session_slot(run, *state.account);
    if (auto* held = std::get_if<Outcome>(&slot)) co_return std::move(*held);

    imap::Session session(co_await boost::asio::this_coro::executor, run.transcript, &run.metrics);
    run.stop.on_request([&session] { session.close(); });
    struct StopHandlerReset {
        StopSignal& stop;
        ~StopHandlerReset() { stop.clear(); }
    } reset_on_exit{run.stop};
    const auto session_failure = [&] {
        if (run.stop.requested()) return Outcome::stopped();
        const imap::Failure& failure = session.failure();
        state.account->session_failed(failure);
        run.transcript.note("failed: " + std::string(to_string(failure.reason)) + ": " +
                            failure.detail);
        return Outcome::failed(failure.reason, failure.detail);
    };

    if (!co_await session.open(state.endpoint, std::move(client), run.deadline)) {
        co_return session_failure();
    }
    state.account->logged_in();
    const auto selected = co_await session.execute(
        "SELECT " + imap::mailbox_argument(options.mailbox), run.deadline, Phase::select);
    if (!selected) co_return session_failure();
    Outcome outcome;
    if (selected->ok()) {
        if (const auto count = exists_count(*selected)) {
            run.metrics.kind_values.emplace_back(kMailboxMessages, *count);
        }
    } else {
        outcome = Outcome::failed(FailureReason::select_rejected,
                                  "SELECT " + options.mailbox + ": " + selected->describe());
        run.transcript.note("failed: select_rejected: " + outcome.detail);
    }
    const auto logout_deadline =
        std::min(run.deadline, std::chrono::steady_clock::now() + kLogoutGrace);
    if (!co_await session.logout(logout_deadline)) {
        if (run.stop.requested()) co_return Outcome::stopped();
        run.transcript.note("no clean answer to LOGOUT (" + session.failure().detail +
                            "); the result stands");
    }
    co_return outcome;
}

class ImapProbe final : public ProbeKind {
  public:
    std::string_view name() const override { return kName; }
    std::span<const Phase> phases() const override { return kPhases; }
    std::span<const FailureReason> reasons() const override { return kReasons; }
    std::span<const std::string_view> required_tables() const override { return kTables; }
    bool has_own_table() const override { return true; }

    std::shared_ptr<const ProbeOptions> read_options(SettingsReader& reader,
                                                     const toml::table& table,
                                                     const std::string& path,
                                                     const TargetConfig& target) const override {
        reader.check_known_keys(table, path, kKeys);
        ImapOptions imap;
        ImapServer server =
            reader.read_imap_server(table, path, {"host", "port", "tls"}, target.host);
        imap.host = std::move(server.host);
        imap.port = server.port;
        imap.tls = server.tls;
        imap.tls_options = std::move(server.tls_options);
        imap.auth = std::move(server.auth);
        imap.mailbox = reader
                           .checked(reader.read<std::string>(table, path, "mailbox"), path,
                                    "mailbox", check_mailbox_name)
                           .value.value_or(imap.mailbox);
        imap.allow_plaintext_auth =
            reader.read<bool>(table, path, "allow_plaintext_auth").value.value_or(false);
        return std::make_shared<TypedOptions<ImapOptions>>(std::move(imap));
    }

    std::vector<std::string> hosts_logged_into(const TargetConfig& target) const override {
        const auto* options = target.probe_options.find<ImapOptions>(kName);
        if (options == nullptr) return {};
        return {options->host};
    }

    bool compile(CompiledTarget& target, LoadContext& load,
                 const std::string& path) const override {
        const auto* options = target.config.probe_options.find<ImapOptions>(kName);
        auto state = std::make_shared<ImapState>();
        state->options = *options;
        state->endpoint = Endpoint{.host = options->host,
                                   .port = options->port,
                                   .tls = options->tls,
                                   .tls_options = options->tls_options,
                                   .tls_context = nullptr,
                                   .family = target.config.other_server_family()};
        const std::string key = child_key(path, kName);
        if (!load.complete_endpoint(state->endpoint, key)) return false;
        state->login = load.load_login(options->auth, key);
        if (!state->login) return false;
        target.kind_states[std::string(kName)] = std::move(state);
        return true;
    }

    boost::asio::awaitable<Outcome> run(ProbeRun run) const override { return run_imap(run); }

    void attach(CompiledTarget& target, ProbeResources& resources) const override {
        auto& state = target.state_of<ImapState>(kName);
        state.account = imap_accounts(resources).account(state.options.host, state.options.port,
                                                         state.options.auth.username);
    }

    std::unique_ptr<ProbeExtraSeries> extra_series(ProbeResources& resources,
                                                   const TargetConfig& instance) const override {
        auto& shared = resources.get<ImapResources>(
            [&] { return std::make_unique<ImapResources>(resources.registry()); });
        return std::make_unique<ImapSeries>(shared.messages, instance_series_labels(instance));
    }
};

}  // namespace

const ProbeKind& imap_probe() {
    static const ImapProbe kind;
    return kind;
}

}  // namespace mailcanary
