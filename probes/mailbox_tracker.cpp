#include "probes/mailbox_tracker.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "common/log.hpp"
#include "common/text.hpp"
#include "probes/probe.hpp"
#include "probes/well_known_folders.hpp"
#include "protocols/credentials.hpp"
#include "protocols/dns_resolver.hpp"
#include "protocols/dsn.hpp"
#include "protocols/imap_removal.hpp"
#include "protocols/mail_headers.hpp"

namespace mailcanary {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr auto kConnectTimeout = std::chrono::seconds(30);
constexpr auto kCommandTimeout = std::chrono::seconds(30);
// RFC 2177: servers may drop a client idle for 30 minutes; IDLE is re-issued well before.
constexpr auto kIdleRefresh = std::chrono::minutes(25);
// How often the probe messages left in a folder are looked at again (new mail is looked at as it
// comes).
constexpr auto kSweepInterval = std::chrono::minutes(5);
constexpr auto kFirstBackoff = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::seconds(60);
constexpr std::size_t kFetchBatch = 100;
// UIDs per FETCH when the folder is first read (up to its UIDNEXT at SELECT), so a folder of
// 100k messages gives replies of at most this many short FETCH lines, not one giant reply.
constexpr std::uint32_t kScanChunk = 2000;

constexpr std::string_view kTokenHeader = "X-Mailcanary-Token";
// New mail is found by fetching this one header of every new message, not by SEARCH: header
// search is a substring match only by the RFC (9051 6.4.4). Gmail matches words ("mc" finds no
// "mc2.<...>" token; https://github.com/emersion/go-imap/issues/120, and Google's own search
// is X-GM-RAW, https://developers.google.com/gmail/imap/imap-extensions), Yahoo finds nothing
// or answers "NO [UNAVAILABLE] Server error"
// (https://github.com/MailCore/mailcore2/issues/823), Exchange departs from the RFC too.
// Content-Type tells delivery status notifications (multipart/report), whose token is in the
// header they return, in their body.
constexpr std::string_view kScannedHeader =
    "(UID BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token Content-Type)])";
// A report is read whole to find the header it returns, but only so far: Postfix returns the
// whole message, and a probe message is a few kilobytes.
constexpr std::string_view kReportBody = "BODY.PEEK[]<0.262144>";
constexpr std::size_t kReportBatch = 20;
constexpr std::string_view kFetchedHeaders =
    "BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token Authentication-Results Received)]";

// RFC 9051 date-time: "29-Nov-2026 09:00:01 +0000" (the day may be space-padded).
std::optional<std::chrono::system_clock::time_point> parse_internaldate(std::string_view text) {
    static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int day = 0, year = 0, hour = 0, minute = 0, second = 0, zone = 0;
    char month_name[4] = {};
    char sign = '+';
    const std::string copy(text);
    if (std::sscanf(copy.c_str(), " %d-%3s-%d %d:%d:%d %c%d", &day, month_name, &year, &hour,
                    &minute, &second, &sign, &zone) != 8) {
        return std::nullopt;
    }
    const auto month = std::find_if(std::begin(kMonths), std::end(kMonths),
                                    [&](std::string_view name) { return name == month_name; });
    if (month == std::end(kMonths)) return std::nullopt;
    std::tm utc{};
    utc.tm_year = year - 1900;
    utc.tm_mon = static_cast<int>(month - std::begin(kMonths));
    utc.tm_mday = day;
    utc.tm_hour = hour;
    utc.tm_min = minute;
    utc.tm_sec = second;
    const std::time_t seconds = timegm(&utc);
    if (seconds == -1) return std::nullopt;
    const int offset = (zone / 100) * 3600 + (zone % 100) * 60;
    return std::chrono::system_clock::from_time_t(seconds - (sign == '-' ? -offset : offset));
}

// A MODSEQ value (RFC 7162: a list of one 63-bit number), kept as its digits for a later
// UNCHANGEDSINCE; empty when it is anything else.
std::string read_modseq(const imap::Value& value) {
    if (value.kind != imap::Value::Kind::list || value.items.size() != 1) return {};
    const std::string& digits = value.items[0].text;
    const bool valid = !digits.empty() && digits.size() <= 20 &&
                       std::all_of(digits.begin(), digits.end(), [](char c) {
                           return std::isdigit(static_cast<unsigned char>(c)) != 0;
                       });
    return valid ? digits : std::string();
}

// One message of a FETCH response.
struct Fetched {
    std::uint32_t uid = 0;
    std::optional<std::chrono::system_clock::time_point> internal_date;
    std::string modseq;  // empty without CONDSTORE
    std::string headers;
};

std::optional<Fetched> read_fetch(const imap::Response& response) {
    if (response.name != "FETCH" || response.data.empty() ||
        response.data[0].kind != imap::Value::Kind::list) {
        return std::nullopt;
    }
    const auto& items = response.data[0].items;
    Fetched fetched;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const imap::Value& name = items[i];
        const imap::Value& value = items[i + 1];
        if (name.is_atom("UID")) {
            fetched.uid = value.number().value_or(0);
        } else if (name.is_atom("INTERNALDATE")) {
            fetched.internal_date = parse_internaldate(value.text);
        } else if (name.is_atom("MODSEQ")) {
            fetched.modseq = read_modseq(value);
        } else if (name.kind == imap::Value::Kind::atom &&
                   iequals(name.text.substr(0, std::min<std::size_t>(5, name.text.size())),
                           "BODY[")) {
            fetched.headers = value.text;
        }
    }
    if (fetched.uid == 0) return std::nullopt;
    return fetched;
}

// A multipart/report, which delivery status notifications are (RFC 6522); the parser decides.
bool is_report(const std::vector<HeaderField>& fields) {
    const auto types = header_values(fields, "Content-Type");
    return !types.empty() && iequals(trim(types.front()).substr(0, 16), "multipart/report");
}

// What a report says about the first recipient it failed for, else the first it delayed;
// nothing when it is not about a failure or a delay (a report of delivery, say).
std::optional<Bounce> bounce_in(const DeliveryStatusNotification& report) {
    const RecipientStatus* recipient = report.first_failure();
    if (recipient == nullptr) {
        const auto delayed =
            std::find_if(report.recipients.begin(), report.recipients.end(),
                         [](const RecipientStatus& each) { return each.action == "delayed"; });
        if (delayed == report.recipients.end()) return std::nullopt;
        recipient = &*delayed;
    }
    Bounce bounce;
    bounce.failed = recipient->action == "failed";
    bounce.status = recipient->status;
    bounce.diagnostic_code = recipient->diagnostic_code;
    bounce.reporting_mta = report.reporting_mta;
    bounce.recipient = recipient->final_recipient;
    return bounce;
}

// A Message-ID field's value without its angle brackets and spaces.
std::string bare_message_id(std::string_view value) {
    value = trim(value);
    if (value.starts_with('<') && value.ends_with('>')) value = value.substr(1, value.size() - 2);
    return std::string(value);
}

std::string uid_set(const std::vector<std::uint32_t>& uids, std::size_t from, std::size_t to) {
    std::string out;
    for (std::size_t i = from; i < to; ++i) {
        if (!out.empty()) out += ',';
        out += std::to_string(uids[i]);
    }
    return out;
}

std::optional<std::uint32_t> code_number(const imap::Response& response, std::string_view code) {
    if (!response.is_status()) return std::nullopt;
    const auto argument = imap::code_argument(response.code, code);
    if (!argument) return std::nullopt;
    imap::Value number;
    number.text = std::string(*argument);
    return number.number();
}

void log_watching(const std::string& mailbox, const std::string& folder, bool idle) {
    log::info("watching a folder",
              {{"mailbox", mailbox}, {"folder", folder}, {"mode", idle ? "idle" : "polling"}});
}

}  // namespace

std::string MailboxSettings::key() const {
    const auto& tls = endpoint.tls_options;
    std::string key = endpoint.host + '\n' + std::to_string(endpoint.port) + '\n' +
                      std::to_string(static_cast<int>(endpoint.tls)) + '\n' + tls.ca_file + '\n' +
                      tls.server_name + '\n' + (tls.insecure_skip_verify ? "skip" : "verify") +
                      '\n' + std::to_string(static_cast<int>(tls.min_version)) + '\n' +
                      client.credentials.username + '\n' + login->identity() + '\n' + mailbox +
                      '\n' + std::to_string(static_cast<int>(cleanup)) + '\n' +
                      std::to_string(static_cast<int>(delete_method)) + '\n' +
                      (use_idle ? "idle" : "poll") + '\n' + std::to_string(poll_interval.count()) +
                      '\n' + (prompt_checks ? "prompt" : "") + '\n' + bounce_folder + '\n' +
                      // Other DNS servers after a reload: a session of its own, resolved by them.
                      (endpoint.resolver ? endpoint.resolver->servers() : "") + '\n';
    if (junk_folders) {
        key += "junk:";
        for (const auto& folder : *junk_folders) key += folder + '\t';
    }
    return key;
}

struct MailboxTracker::Folder {
    std::string name;
    bool junk = false;
    bool primary = false;  // the mailbox itself: its session speaks for the login
    bool modseqs = false;  // CONDSTORE: removals claim a message (UNCHANGEDSINCE) first
    std::uint32_t uid_validity = 0;
    std::uint32_t next_uid = 1;  // every message below was looked at once
    std::uint32_t scan_end = 0;  // UIDNEXT at SELECT: read up to there in chunks
    // Messages with a token that are still to be removed (in flight for another run, someone
    // else's removal in progress): looked at again by each sweep, until gone or settled.
    std::set<std::uint32_t> recheck;
    std::set<std::uint32_t> report_recheck;  // the same for delivery status notifications
    Clock::time_point next_sweep{};          // the next look at `recheck`
};

MailboxTracker::MailboxTracker(asio::any_io_executor executor, MailboxSettings settings,
                               RoundtripEvents& events, std::shared_ptr<AwaitedTokens> agent_awaits)
    : executor_(std::move(executor)),
      settings_(std::move(settings)),
      events_(events),
      awaited_(settings_.token_secret, std::move(agent_awaits)) {
    if (!settings_.account) {
        settings_.account = std::make_shared<ImapAccount>(settings_.label, kMaxSessionsPerAccount);
    }
}

MailboxTracker::~MailboxTracker() { stop(); }

void MailboxTracker::start() {
    asio::co_spawn(executor_, watch(settings_.mailbox, false), asio::detached);
}

void MailboxTracker::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (imap::Session* session : sessions_) session->close();
    for (auto* sleeper : sleepers_) sleeper->cancel();
    for (auto* login_wait : login_waits_) login_wait->cancel();
    for (auto& [token, waiter] : waiters_) waiter->cancel();
}

std::string MailboxTracker::detection() const {
    if (settings_.use_idle) return "IDLE when offered, else polling";
    return "polling every " + format_duration(settings_.poll_interval);
}

asio::awaitable<std::optional<imap::Failure>> MailboxTracker::login_failure(
    Clock::time_point deadline, StopSignal& stop) {
    const auto self = shared_from_this();
    if (!login_tried_ && !stopped_) {
        asio::steady_timer timer(executor_, deadline);
        login_waits_.insert(&timer);
        stop.on_request([&timer] { timer.cancel(); });
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        stop.clear();
        login_waits_.erase(&timer);
    }
    if (login_tried_ || stop.requested() || stopped_) co_return login_failure_;
    co_return imap::Failure{FailureReason::imap_connect,
                            "the first login to the mailbox has no answer yet"};
}

void MailboxTracker::expect(const std::string& token, const std::string& target,
                            std::string message_id) {
    awaited_.expect(token, target, Clock::now(), std::move(message_id));
    excerpts_.begin(token);
    report_pending(target);
    if (!settings_.prompt_checks) return;
    // Long waits for news end now, so the folders are looked at on the prompt schedule.
    for (imap::Session* session : sessions_) session->end_idle();
    for (asio::steady_timer* poll : poll_waits_) poll->cancel();
}

std::optional<Duration> MailboxTracker::prompt_check_interval() const {
    // Prompt checks are extra commands: none while the server asks for fewer.
    if (!settings_.prompt_checks || settings_.account->backoff_until()) return std::nullopt;
    return awaited_.prompt_check_interval(Clock::now(), settings_.poll_interval);
}

void MailboxTracker::abandon(const std::string& token) {
    excerpts_.end(token, nullptr);
    if (const auto target = awaited_.abandon(token)) report_pending(*target);
}

void MailboxTracker::report_pending(const std::string& target) {
    events_.pending_changed(target, awaited_.pending_for(target));
}

void MailboxTracker::wake(const std::string& token) {
    if (const auto waiter = waiters_.find(token); waiter != waiters_.end())
        waiter->second->cancel();
}

asio::awaitable<WaitResult> MailboxTracker::wait(std::string token, Clock::time_point deadline,
                                                 StopSignal& stop, Transcript& transcript) {
    const auto self = shared_from_this();
    asio::steady_timer timer(executor_, deadline);
    WaitResult result;
    if (awaited_.awaited(token)) waiters_[token] = &timer;
    stop.on_request([&timer] { timer.cancel(); });
    while (true) {
        if (!awaited_.awaited(token)) {
            result.kind = WaitResult::Kind::stopped;
            break;
        }
        if (awaited_.bounced(token)) {
            result.kind = WaitResult::Kind::bounced;
            break;
        }
        if (const Arrival* arrival = awaited_.arrival(token)) {
            result.kind = WaitResult::Kind::arrived;
            result.arrival = *arrival;
            break;
        }
        if (stop.requested() || stopped_) {
            result.kind = WaitResult::Kind::stopped;
            break;
        }
        if (login_refused()) {
            result.kind = WaitResult::Kind::imap_failed;
            result.failure = *login_failure_;
            break;
        }
        if (Clock::now() >= deadline) {
            // "Lost" only when the mailbox could be watched; otherwise say why it could not.
            if (inbox_up_) {
                result.kind = WaitResult::Kind::lost;
            } else {
                result.kind = WaitResult::Kind::imap_failed;
                result.failure = last_failure_.value_or(
                    imap::Failure{FailureReason::imap_connect, "the mailbox session is not up"});
            }
            break;
        }
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    stop.clear();
    waiters_.erase(token);
    excerpts_.end(token, &transcript);
    result.reports = awaited_.reports(token);
    std::optional<std::string> target;
    if (result.kind == WaitResult::Kind::arrived) {
        target = awaited_.finish(token);
    } else if (result.kind == WaitResult::Kind::stopped ||
               result.kind == WaitResult::Kind::bounced) {
        // Bounced, the message will not come; should a copy arrive anyway, it is a leftover.
        target = awaited_.abandon(token);
    } else {
        // Lost, or not seen because the mailbox could not be read meanwhile: the message was
        // sent, and should it arrive (found once a session is up again) it is counted late.
        target = awaited_.give_up_as_lost(token);
    }
    if (target) report_pending(*target);
    co_return result;
}

asio::awaitable<void> MailboxTracker::pause(Duration duration, bool for_mail) {
    asio::steady_timer timer(executor_, duration);
    sleepers_.insert(&timer);
    if (for_mail) poll_waits_.insert(&timer);
    boost::system::error_code ignored;
    if (!stopped_) co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    sleepers_.erase(&timer);
    poll_waits_.erase(&timer);
}

asio::awaitable<std::optional<ImapAccount::Slot>> MailboxTracker::account_slot() {
    while (!stopped_) {
        if (const auto until = settings_.account->backoff_until()) {
            co_await pause(*until - Clock::now());
            continue;
        }
        asio::steady_timer timer(executor_, Clock::time_point::max());
        sleepers_.insert(&timer);
        auto slot = co_await settings_.account->take_slot(timer);
        sleepers_.erase(&timer);
        // Throttled while it waited: it waits for the backoff first.
        if (slot && !stopped_ && !settings_.account->backoff_until()) co_return slot;
    }
    co_return std::nullopt;
}

FailureReason roundtrip_reason(FailureReason session_reason) {
    switch (session_reason) {
        case FailureReason::dns:
        case FailureReason::connect_refused:
        case FailureReason::connect_timeout:
        case FailureReason::network:
        case FailureReason::closed:
        case FailureReason::timeout:
        case FailureReason::greeting_rejected:
            return FailureReason::imap_connect;
        case FailureReason::tls_handshake:
        case FailureReason::tls_cert_untrusted:
        case FailureReason::tls_cert_expired:
        case FailureReason::tls_cert_hostname:
        case FailureReason::starttls_unavailable:
        case FailureReason::starttls_rejected:
            return FailureReason::imap_tls;
        case FailureReason::auth_unavailable:
        case FailureReason::auth_rejected:
        case FailureReason::auth_disabled:
        case FailureReason::auth_tempfail:
        case FailureReason::auth_insecure:
        case FailureReason::oauth_token:
            return FailureReason::imap_auth;
        case FailureReason::throttled:
            return FailureReason::throttled;
        case FailureReason::descriptors_exhausted:
            return FailureReason::descriptors_exhausted;
        default:
            return FailureReason::imap_protocol;
    }
}

void MailboxTracker::session_failed(const imap::Failure& session_failure, bool primary) {
    const imap::Failure failure{roundtrip_reason(session_failure.reason), session_failure.detail};
    last_failure_ = failure;
    if (primary) inbox_up_ = false;
    log::warn("mailbox session failed", {{"mailbox", settings_.label},
                                         {"reason", to_string(session_failure.reason)},
                                         {"detail", failure.detail}});
}

asio::awaitable<void> MailboxTracker::watch(std::string folder_name, bool junk) {
    const auto self = shared_from_this();  // the watch keeps the tracker alive until stop()
    Folder folder;
    folder.name = std::move(folder_name);
    folder.junk = junk;
    folder.primary = !junk && folder.name == settings_.mailbox;
    Duration backoff = kFirstBackoff;
    while (!stopped_) {
        auto slot = co_await account_slot();
        if (!slot) break;
        Transcript transcript;
        imap::Session session(executor_, transcript);
        sessions_.push_back(&session);
        bool was_up = false;
        const auto failure = co_await watch_session(session, folder, was_up);
        std::erase(sessions_, &session);
        slot.reset();  // the session is closed: the pause below holds none
        if (stopped_) break;
        settings_.account->session_failed(failure);
        if (was_up) backoff = kFirstBackoff;
        session_failed(failure, folder.primary);
        co_await pause(backoff);
        backoff = std::min<Duration>(backoff * 2, kMaxBackoff);
    }
}

bool MailboxTracker::login_refused() const {
    return login_failure_ && (login_failure_->reason == FailureReason::imap_auth ||
                              login_failure_->reason == FailureReason::imap_tls);
}

void MailboxTracker::login_settled(const std::optional<imap::Failure>& session_failure) {
    login_tried_ = true;
    login_failure_.reset();
    if (session_failure) {
        const FailureReason reason = roundtrip_reason(session_failure->reason);
        if (reason != FailureReason::imap_protocol) {
            login_failure_ = imap::Failure{reason, session_failure->detail};
        }
    }
    for (auto* login_wait : login_waits_) login_wait->cancel();
    // Refused credentials or an unverifiable certificate will not heal within a run's timeout:
    // the runs waiting now fail with the reason instead of waiting to call it lost.
    if (login_refused()) {
        for (auto& [token, waiter] : waiters_) waiter->cancel();
    }
}

asio::awaitable<std::optional<imap::Failure>> MailboxTracker::add_secret(
    imap::ClientOptions& options) {
    std::string error;
    auto secret = co_await settings_.login->secret(Clock::now() + kConnectTimeout, error);
    if (!secret) co_return imap::Failure{FailureReason::oauth_token, "login secret: " + error};
    options.credentials.secret = std::move(secret->value);
    options.credentials.secret_is_token = secret->is_token;
    co_return std::nullopt;
}

asio::awaitable<imap::Failure> MailboxTracker::watch_session(imap::Session& session, Folder& folder,
                                                             bool& was_up) {
    if (auto failure = co_await open_folder(session, folder)) co_return std::move(*failure);
    was_up = true;
    if (folder.primary) inbox_up_ = true;
    co_return co_await follow_folder(session, folder);
}

asio::awaitable<std::optional<imap::Failure>> MailboxTracker::log_in(imap::Session& session) {
    imap::ClientOptions options = settings_.client;
    if (auto failure = co_await add_secret(options)) co_return failure;
    if (!co_await session.open(settings_.endpoint, options, Clock::now() + kConnectTimeout)) {
        co_return session.failure();
    }
    co_return std::nullopt;
}

asio::awaitable<std::optional<imap::Failure>> MailboxTracker::open_folder(imap::Session& session,
                                                                          Folder& folder) {
    const auto login = co_await log_in(session);
    if (!login) settings_.account->logged_in();
    // The mailbox's own session speaks for the login: a junk folder's may fail for its own
    // reasons (a limit on sessions, say) while mail can still be read.
    if (folder.primary && !stopped_) login_settled(login);
    if (login) co_return login;
    if (folder.primary && !junk_watchers_started_ && !co_await discover_folders(session)) {
        co_return session.failure();
    }
    co_return co_await select(session, folder);
}

asio::awaitable<std::optional<imap::Failure>> MailboxTracker::select(imap::Session& session,
                                                                     Folder& folder) {
    // CONDSTORE lets a removal claim a message, so that of two sessions removing the same
    // leftover one does (RFC 7162 3.1.3); HIGHESTMODSEQ says the folder keeps mod-sequences.
    const bool condstore = session.client().has_capability("CONDSTORE");
    const auto selected = co_await session.execute(
        "SELECT " + imap::mailbox_argument(folder.name) + (condstore ? " (CONDSTORE)" : ""),
        Clock::now() + kCommandTimeout);
    if (!selected) co_return session.failure();
    if (!selected->ok()) {
        co_return imap::Failure{FailureReason::select_rejected,
                                "SELECT " + folder.name + ": " + selected->describe()};
    }
    folder.modseqs = false;
    folder.scan_end = 0;
    for (const auto& response : selected->untagged) {
        if (condstore && response.is_status() &&
            imap::code_argument(response.code, "HIGHESTMODSEQ")) {
            folder.modseqs = true;
        }
        const auto validity = code_number(response, "UIDVALIDITY");
        // New UIDVALIDITY: the UIDs known so far name other messages now (RFC 9051 2.3.1.1).
        if (validity && *validity != folder.uid_validity) {
            folder.uid_validity = *validity;
            folder.recheck.clear();
            folder.next_uid = 1;
        }
        if (const auto next = code_number(response, "UIDNEXT")) folder.scan_end = *next;
    }
    co_return std::nullopt;
}

asio::awaitable<imap::Failure> MailboxTracker::follow_folder(imap::Session& session,
                                                             Folder& folder) {
    folder.next_sweep = Clock::now();
    const bool use_idle = settings_.use_idle && session.client().has_capability("IDLE");
    log_watching(settings_.label, folder.name, use_idle);
    bool changed = true;
    while (!stopped_) {
        const bool sweep = Clock::now() >= folder.next_sweep;
        if (changed || sweep) {
            if (!co_await check(session, folder, sweep)) co_return session.failure();
            if (sweep) {
                folder.next_sweep = Clock::now() + std::min<Duration>(kSweepInterval, age_limit_);
            }
        }
        const auto prompt = prompt_check_interval();
        if (use_idle) {
            auto until = std::min(folder.next_sweep, Clock::now() + kIdleRefresh);
            if (prompt) until = std::min(until, Clock::now() + *prompt);
            if (!co_await session.idle(until)) co_return session.failure();
            changed = true;  // new mail, time for a sweep or a prompt check: either way, look
        } else {
            co_await pause(prompt.value_or(settings_.poll_interval), true);
            if (stopped_) break;
            if (!co_await session.execute("NOOP", Clock::now() + kCommandTimeout)) {
                co_return session.failure();
            }
            changed = session.client().take_mailbox_changed();
        }
    }
    co_return imap::Failure{FailureReason::closed, "stopped"};
}

asio::awaitable<bool> MailboxTracker::discover_folders(imap::Session& session) {
    const bool special_use = session.client().has_capability("SPECIAL-USE");
    const auto listed = co_await session.execute(
        special_use ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)" : "LIST \"\" \"*\"",
        Clock::now() + kCommandTimeout);
    if (!listed) co_return false;
    const WellKnownFolders found = well_known_folders(listed_folders(listed->untagged),
                                                      settings_.junk_folders, settings_.mailbox);
    trash_folder_ = found.trash;
    log_watched_folders(found, settings_.label, settings_.mailbox,
                        settings_.cleanup == CleanupMode::trash ||
                            (settings_.cleanup == CleanupMode::delete_message &&
                             deletes_via_trash(session.client())));
    junk_watchers_started_ = true;
    for (const auto& name : found.junk) {
        asio::co_spawn(executor_, watch(name, true), asio::detached);
    }
    // Every watched folder reads the bounces in it: a bounce folder that is the mailbox or a
    // junk folder (where a provider may file bounces) needs no second session.
    const bool bounces_watched = settings_.bounce_folder.empty() ||
                                 settings_.bounce_folder == settings_.mailbox ||
                                 std::find(found.junk.begin(), found.junk.end(),
                                           settings_.bounce_folder) != found.junk.end();
    if (!bounces_watched) {
        asio::co_spawn(executor_, watch(settings_.bounce_folder, false), asio::detached);
    }
    co_return true;
}

asio::awaitable<bool> MailboxTracker::check(imap::Session& session, Folder& folder, bool sweep) {
    std::vector<std::uint32_t> uids;
    std::vector<std::uint32_t> reports;
    if (!co_await scan_new(session, folder, uids, reports)) co_return false;
    const auto seen = Clock::now();
    if (sweep) {
        uids.insert(uids.end(), folder.recheck.begin(), folder.recheck.end());
        reports.insert(reports.end(), folder.report_recheck.begin(), folder.report_recheck.end());
    }
    if (!uids.empty() && !co_await examine(session, folder, uids, seen)) co_return false;
    co_return reports.empty() || co_await examine_reports(session, folder, reports);
}

asio::awaitable<bool> MailboxTracker::scan_new(imap::Session& session, Folder& folder,
                                               std::vector<std::uint32_t>& uids,
                                               std::vector<std::uint32_t>& reports) {
    while (true) {
        const std::uint32_t from = folder.next_uid;
        // The last range is open ("n:*") so that it takes whatever arrived since SELECT.
        const bool last = folder.scan_end <= from || folder.scan_end - from <= kScanChunk;
        const std::uint32_t to = from + kScanChunk - 1;
        const std::string command = "UID FETCH " + std::to_string(from) + ":" +
                                    (last ? "*" : std::to_string(to)) + " " +
                                    std::string(kScannedHeader);
        const auto sent = Clock::now();
        const auto fetched = co_await session.execute(command, sent + kCommandTimeout);
        if (!fetched) co_return false;
        if (excerpts_.awaits_unseen()) {
            excerpts_.add_look_for_new_mail(make_exchange(folder.name, command, *fetched, sent));
        }
        if (!fetched->ok()) {
            // Looked at again from the same UID next time; the session is still fine.
            log::warn("mailbox fetch of new mail refused",
                      {{"mailbox", settings_.label}, {"reply", fetched->describe()}});
            co_return true;
        }
        for (const auto& response : fetched->untagged) {
            const auto message = read_fetch(response);
            // "n:*" always includes the last message, even below n (RFC 9051 6.4.8).
            if (!message || message->uid < from) continue;
            folder.next_uid = std::max(folder.next_uid, message->uid + 1);
            const auto fields = parse_header_block(message->headers);
            if (!header_values(fields, kTokenHeader).empty()) {
                uids.push_back(message->uid);
            } else if (is_report(fields)) {
                reports.push_back(message->uid);
            }
        }
        if (last) co_return true;
        folder.next_uid = std::max(folder.next_uid, to + 1);
    }
}

asio::awaitable<bool> MailboxTracker::examine(imap::Session& session, Folder& folder,
                                              const std::vector<std::uint32_t>& uids,
                                              Clock::time_point seen) {
    const std::string items = std::string("(UID INTERNALDATE ") +
                              (folder.modseqs ? "MODSEQ " : "") + std::string(kFetchedHeaders) +
                              ")";
    for (std::size_t from = 0; from < uids.size(); from += kFetchBatch) {
        const std::size_t to = std::min(uids.size(), from + kFetchBatch);
        const std::string command = "UID FETCH " + uid_set(uids, from, to) + " " + items;
        const auto sent = Clock::now();
        const auto fetched = co_await session.execute(command, Clock::now() + kCommandTimeout);
        if (!fetched) co_return false;
        std::shared_ptr<const ImapExchange> exchange;  // made once a run cares
        // Looked at again only if still there and still to be removed.
        for (std::size_t i = from; i < to; ++i) folder.recheck.erase(uids[i]);
        for (const auto& response : fetched->untagged) {
            const auto message = read_fetch(response);
            if (!message) continue;
            const auto fields = parse_header_block(message->headers);
            const auto tokens = header_values(fields, kTokenHeader);
            const std::string token = tokens.empty() ? std::string() : tokens.front();
            const auto classified = awaited_.classify(
                token, Arrival{folder.name, folder.junk, seen, message->uid, message->headers},
                message->internal_date, std::chrono::system_clock::now(), age_limit_);
            switch (classified.found) {
                case AwaitedMessages::Found::not_ours:  // never touched
                    continue;
                case AwaitedMessages::Found::in_flight:
                    folder.recheck.insert(message->uid);
                    continue;
                case AwaitedMessages::Found::awaited:
                    if (!exchange) exchange = make_exchange(folder.name, command, *fetched, sent);
                    excerpts_.add(token, exchange, true);
                    break;
                case AwaitedMessages::Found::late:
                    events_.message_late(classified.target);
                    log::info("a message given up as lost arrived",
                              {{"target", classified.target}, {"folder", folder.name}});
                    break;
                case AwaitedMessages::Found::leftover:
                    break;
            }
            const Removal removal =
                co_await remove(session, folder, message->uid, message->modseq, token);
            if (removal == Removal::left || removal == Removal::broken) {
                folder.recheck.insert(message->uid);
            }
            if (removal == Removal::removed &&
                classified.found == AwaitedMessages::Found::leftover) {
                events_.leftover_removed(settings_.label);
            }
            // The run goes on once its message is gone (its time was taken when it was seen):
            // a one-shot run that ends the process leaves nothing behind.
            wake(token);
            if (removal == Removal::broken) co_return false;
        }
    }
    co_return true;
}

asio::awaitable<bool> MailboxTracker::examine_reports(imap::Session& session, Folder& folder,
                                                      const std::vector<std::uint32_t>& uids) {
    const std::string items = std::string("(UID INTERNALDATE ") +
                              (folder.modseqs ? "MODSEQ " : "") + std::string(kReportBody) + ")";
    for (std::size_t from = 0; from < uids.size(); from += kReportBatch) {
        const std::size_t to = std::min(uids.size(), from + kReportBatch);
        // Not kept for any run's transcript: a report returns the message, token and all.
        const auto fetched = co_await session.execute(
            "UID FETCH " + uid_set(uids, from, to) + " " + items, Clock::now() + kCommandTimeout);
        if (!fetched) co_return false;
        for (std::size_t i = from; i < to; ++i) folder.report_recheck.erase(uids[i]);
        for (const auto& response : fetched->untagged) {
            const auto message = read_fetch(response);
            if (!message) continue;
            const auto report = parse_delivery_status_notification(message->headers);
            if (!report) continue;  // a multipart/report of another kind: not ours to judge
            auto bounce = bounce_in(*report);
            if (!bounce) continue;
            bounce->folder = folder.name;
            bounce->uid = message->uid;
            const auto tokens = header_values(report->returned_header, kTokenHeader);
            const auto message_ids = header_values(report->returned_header, "Message-ID");
            const std::string token = tokens.empty() ? std::string() : tokens.front();
            const auto classified = awaited_.classify_report(
                token, message_ids.empty() ? std::string() : bare_message_id(message_ids.front()),
                *bounce, message->internal_date, std::chrono::system_clock::now(), age_limit_);
            switch (classified.found) {
                case AwaitedMessages::Found::not_ours:  // never touched, even when tied to a run
                    wake(classified.run);
                    continue;
                case AwaitedMessages::Found::in_flight:
                    folder.report_recheck.insert(message->uid);
                    continue;
                case AwaitedMessages::Found::awaited:
                case AwaitedMessages::Found::late:
                case AwaitedMessages::Found::leftover:
                    break;
            }
            log::info("a delivery status notification about a probe message",
                      {{"mailbox", settings_.label},
                       {"folder", folder.name},
                       {"status", bounce->status},
                       {"reporting_mta", bounce->reporting_mta}});
            const Removal removal =
                co_await remove(session, folder, message->uid, message->modseq, token);
            if (removal == Removal::left || removal == Removal::broken) {
                folder.report_recheck.insert(message->uid);
            }
            wake(classified.run);
            if (removal == Removal::broken) co_return false;
        }
    }
    co_return true;
}

asio::awaitable<std::optional<imap::Completion>> MailboxTracker::execute_for(
    const std::string& token, imap::Session& session, const Folder& folder, std::string command) {
    const auto sent = Clock::now();
    auto completion = co_await session.execute(command, sent + kCommandTimeout);
    if (completion && excerpts_.wants(token)) {
        excerpts_.add(token, make_exchange(folder.name, std::move(command), *completion, sent));
    }
    co_return completion;
}

MailboxTracker::Removal MailboxTracker::refused(std::string_view what,
                                                const imap::Completion& reply) {
    log::warn(what, {{"mailbox", settings_.label}, {"reply", reply.describe()}});
    return Removal::stays;
}

bool MailboxTracker::deletes_via_trash(const imap::Client& client) const {
    switch (settings_.delete_method) {
        case DeleteMethod::automatic:
            return client.has_capability("X-GM-EXT-1");
        case DeleteMethod::expunge:
            return false;
        case DeleteMethod::via_trash:
            return true;
    }
    return false;
}

asio::awaitable<MailboxTracker::Removal> MailboxTracker::remove(imap::Session& session,
                                                                Folder& folder, std::uint32_t uid,
                                                                const std::string& modseq,
                                                                const std::string& token) {
    if (settings_.cleanup == CleanupMode::keep) co_return Removal::stays;
    const bool via_trash = settings_.cleanup == CleanupMode::delete_message &&
                           deletes_via_trash(session.client()) && folder.name != trash_folder_;
    if (settings_.cleanup == CleanupMode::delete_message && !via_trash) {
        co_return co_await expunge(session, folder, uid, modseq, token);
    }
    if (via_trash && !trash_folder_) {
        if (!no_trash_warned_) {
            no_trash_warned_ = true;
            log::warn("no trash folder to delete probe messages through: they stay",
                      {{"mailbox", settings_.label}});
        }
        co_return Removal::stays;
    }
    std::optional<imap::Copy> copy;
    const Removal moved = co_await move_to_trash(session, folder, uid, modseq, token, copy);
    if (!via_trash || !copy || moved == Removal::broken) co_return moved;
    const Removal purged = co_await purge_from_trash(session, folder, *copy, token);
    // Removed for real only once gone from both: the MOVE's COPYUID says this session took it
    // from the folder (no other session counts it), the trash's EXPUNGE that it is gone.
    if (purged == Removal::broken) co_return Removal::broken;
    if (moved == Removal::removed && purged != Removal::removed) co_return Removal::stays;
    co_return moved;
}

asio::awaitable<MailboxTracker::Removal> MailboxTracker::move_to_trash(
    imap::Session& session, const Folder& folder, std::uint32_t uid, const std::string& modseq,
    const std::string& token, std::optional<imap::Copy>& copy) {
    const std::string uid_text = std::to_string(uid);
    const std::string trash = imap::mailbox_argument(trash_folder_.value_or("Trash"));
    if (session.client().has_capability("MOVE")) {
        const auto moved =
            co_await execute_for(token, session, folder, "UID MOVE " + uid_text + " " + trash);
        if (!moved) co_return Removal::broken;
        // Only COPYUID tells this move from another session's of the same message.
        copy = imap::copied_to(*moved, uid);
        if (imap::move_moved(*moved, uid)) co_return Removal::removed;
        // EXPUNGEISSUED: another session moved or expunged it first.
        if (!moved->ok() && !iequals(moved->code, "EXPUNGEISSUED")) {
            co_return refused("cannot move a probe message to the trash", *moved);
        }
        co_return Removal::left;
    }
    const auto copied =
        co_await execute_for(token, session, folder, "UID COPY " + uid_text + " " + trash);
    if (!copied) co_return Removal::broken;
    if (!copied->ok()) co_return refused("cannot copy a probe message to the trash", *copied);
    copy = imap::copied_to(*copied, uid);
    co_return co_await expunge(session, folder, uid, modseq, token);
}

asio::awaitable<MailboxTracker::Removal> MailboxTracker::purge_from_trash(
    imap::Session& session, Folder& folder, const imap::Copy& copy, const std::string& token) {
    Folder trash;
    trash.name = *trash_folder_;
    Removal purged = Removal::stays;
    if (const auto failure = co_await select(session, trash)) {
        if (failure->reason != FailureReason::select_rejected) co_return Removal::broken;
        log::warn("cannot select the trash",
                  {{"mailbox", settings_.label}, {"detail", failure->detail}});
    } else if (trash.uid_validity != copy.uid_validity) {
        // COPYUID's UIDs are valid under its UIDVALIDITY only (RFC 4315 3).
        log::warn("the trash changed its UIDVALIDITY: the probe message stays there",
                  {{"mailbox", settings_.label}});
    } else {
        // The UID came from the server's own word: the message is removed only once its token
        // is seen to be the one verified in the folder it came from.
        const std::string command =
            "UID FETCH " + std::to_string(copy.uid) + " " + std::string(kScannedHeader);
        const auto fetched = co_await execute_for(token, session, trash, command);
        if (!fetched) co_return Removal::broken;
        bool same = false;
        for (const auto& response : fetched->untagged) {
            const auto message = read_fetch(response);
            if (!message || message->uid != copy.uid) continue;
            const auto tokens = header_values(parse_header_block(message->headers), kTokenHeader);
            same = tokens.size() == 1 && tokens.front() == token;
        }
        if (same) {
            purged = co_await expunge(session, trash, copy.uid, "", token);
            // A server that expunges at once (Gmail's Auto-Expunge) need not name the message in
            // its replies: the copy, which only this session knew of, is gone if its UID is.
            if (purged == Removal::left) {
                const auto again = co_await execute_for(token, session, trash, command);
                if (!again) co_return Removal::broken;
                const bool still_there = std::any_of(again->untagged.begin(), again->untagged.end(),
                                                     [&](const imap::Response& response) {
                                                         const auto message = read_fetch(response);
                                                         return message && message->uid == copy.uid;
                                                     });
                if (again->ok() && !still_there) purged = Removal::removed;
            }
            if (purged == Removal::broken) co_return purged;
        } else {
            log::warn(
                "the trash's copy of a probe message is not the message moved there: left alone",
                {{"mailbox", settings_.label}});
        }
    }
    if (purged != Removal::removed) {
        log::warn("a probe message moved to the trash stays there until the server empties it",
                  {{"mailbox", settings_.label}});
    }
    // The session goes on watching its own folder.
    if (const auto failure = co_await select(session, folder)) {
        log::warn("cannot select the watched folder again",
                  {{"mailbox", settings_.label}, {"detail", failure->detail}});
        session.close();
        co_return Removal::broken;
    }
    co_return purged;
}

asio::awaitable<MailboxTracker::Removal> MailboxTracker::expunge(imap::Session& session,
                                                                 const Folder& folder,
                                                                 std::uint32_t uid,
                                                                 const std::string& modseq,
                                                                 const std::string& token) {
    const std::string uid_text = std::to_string(uid);
    // With the mod-sequence it was fetched at, the flag is set only if nobody changed the
    // message since: of two sessions removing it, one sets it, the other hears MODIFIED.
    const std::string condition = modseq.empty() ? "" : " (UNCHANGEDSINCE " + modseq + ")";
    const auto flagged = co_await execute_for(
        token, session, folder, "UID STORE " + uid_text + condition + " +FLAGS (\\Deleted)");
    if (!flagged) co_return Removal::broken;
    if (!flagged->ok()) {
        co_return refused("cannot flag a probe message \\Deleted", *flagged);
    }
    // Not updated: another session's to remove now, or gone already. A later sweep looks again.
    if (!imap::store_updated(*flagged, uid)) co_return Removal::left;
    imap::MessagePosition position(uid);
    position.follow(flagged->untagged);
    // Only UID EXPUNGE (RFC 4315) removes exactly this message; a plain EXPUNGE would also
    // remove whatever else someone flagged \Deleted, so without UIDPLUS the flag stays.
    if (!session.client().has_capability("UIDPLUS")) {
        if (!uidplus_warned_) {
            uidplus_warned_ = true;
            log::warn(
                "the server lacks UIDPLUS: probe messages are flagged \\Deleted, not "
                "expunged",
                {{"mailbox", settings_.label}});
        }
        co_return Removal::stays;
    }
    const auto expunged = co_await execute_for(token, session, folder, "UID EXPUNGE " + uid_text);
    if (!expunged) co_return Removal::broken;
    // Its sequence number, from the STORE's FETCH, names it in the server's EXPUNGE.
    position.follow(expunged->untagged);
    if (position.expunged()) co_return Removal::removed;
    co_return expunged->ok() ? Removal::left : Removal::stays;
}

}  // namespace mailcanary
