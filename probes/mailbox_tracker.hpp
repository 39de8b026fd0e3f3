// Watches one mailbox's folders over IMAP for probe messages: one long-lived session per watched
// folder (the mailbox, and each junk folder: IDLE watches one folder per session), shared by
// every run that delivers there. Runs register their message's token before sending it and wait
// for its arrival; the tracker finds messages by token, tells the run, and removes them. What
// each message is (awaited, late, a leftover, in flight elsewhere) is AwaitedMessages'
// bookkeeping; which trackers exist is MailboxRegistry's. Messages are only ever touched by UID
// after their token was verified with the installation's secret, and a leftover counts as
// removed only once the server reported it gone (see docs/configuration.md, "Sharing a
// mailbox").
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "probes/awaited_messages.hpp"
#include "probes/imap_account.hpp"
#include "probes/mailbox_excerpts.hpp"
#include "probes/target_config.hpp"
#include "protocols/credential_source.hpp"
#include "protocols/imap_removal.hpp"
#include "protocols/imap_session.hpp"

namespace mailcanary {

class StopSignal;

// What happens to probe messages outside any run, for the metrics.
class RoundtripEvents {
  public:
    virtual ~RoundtripEvents() = default;
    // A message that its run had given up on as lost arrived after all.
    virtual void message_late(const std::string& target) = 0;
    // A message of this agent's (or of one sharing its secret) that nobody waits for any more
    // (left by a restart, a crash or an abandoned run) was removed, as the server confirmed.
    virtual void leftover_removed(const std::string& mailbox) = 0;
    virtual void pending_changed(const std::string& target, std::size_t pending) = 0;
};

// What the roundtrip probe does with its message once it has been measured.
enum class CleanupMode { delete_message, trash, keep };

// How cleanup = "delete" deletes. Expunging where the message arrived deletes it on most servers,
// but on Gmail (by default) only takes a label off: the message stays in All Mail. Moved to the
// trash and expunged there, it is gone on every server.
enum class DeleteMethod {
    automatic,  // via_trash where the server has Gmail's semantics (X-GM-EXT-1), else expunge
    expunge,    // flag \Deleted and UID EXPUNGE where it arrived
    via_trash   // UID MOVE (or COPY) to the folder flagged \Trash, then the same there
};

struct MailboxSettings {
    Endpoint endpoint;
    imap::ClientOptions client;  // without the secret, which comes from `login` at each login
    std::shared_ptr<const CredentialSource> login;
    std::string mailbox = "INBOX";
    std::optional<std::vector<std::string>> junk_folders;  // unset: discover
    CleanupMode cleanup = CleanupMode::delete_message;
    DeleteMethod delete_method = DeleteMethod::automatic;  // for CleanupMode::delete_message
    bool use_idle = true;
    Duration poll_interval = std::chrono::seconds(1);
    bool prompt_checks = true;  // RoundtripConfig::prompt_checks
    std::string token_secret;
    // A folder of the same account where delivery status notifications arrive, watched beside
    // the mailbox (empty: none; reports are looked for in every watched folder).
    std::string bounce_folder;
    // The account's sessions and backoff, shared with every other session to it (none: the
    // tracker's own).
    std::shared_ptr<ImapAccount> account;
    // The mailbox in logs, transcripts and the leftovers metric's `mailbox` label:
    // "user@host:port/INBOX", and when another tracker would have the same, "... (target NAME)"
    // (MailboxRegistry::commit).
    std::string label;

    // Targets with equal keys share one tracker.
    std::string key() const;
};

// The roundtrip probe's public reason (imap_connect, imap_tls, imap_auth or imap_protocol, in
// docs/metrics.md) for a mailbox session's failure: the session says what failed in the terms
// an SMTP session would, the probe keeps its coarser contract.
FailureReason roundtrip_reason(FailureReason session_reason);

struct WaitResult {
    // bounced: a delivery status notification said delivery failed for good.
    enum class Kind { arrived, bounced, lost, imap_failed, stopped };
    Kind kind = Kind::lost;
    Arrival arrival;
    imap::Failure failure;
    std::vector<Bounce> reports;  // every report seen about the message, failed or delayed
};

class MailboxTracker : public std::enable_shared_from_this<MailboxTracker> {
  public:
    using Clock = std::chrono::steady_clock;

    // `agent_awaits`: the tokens every tracker of the agent awaits, shared by them all.
    MailboxTracker(boost::asio::any_io_executor executor, MailboxSettings settings,
                   RoundtripEvents& events, std::shared_ptr<AwaitedTokens> agent_awaits);
    ~MailboxTracker();
    MailboxTracker(const MailboxTracker&) = delete;
    MailboxTracker& operator=(const MailboxTracker&) = delete;

    void start();
    void stop();
    const MailboxSettings& settings() const { return settings_; }
    // Set by the registry when the trackers of a configuration are known: see MailboxSettings.
    void set_label(std::string label) { settings_.label = std::move(label); }
    // Leftovers with mc1 tokens (no signed deadline) younger than the longest timeout of the
    // targets delivering here are left alone.
    void set_age_limit(Duration limit) { age_limit_ = limit; }
    Duration age_limit() const { return age_limit_; }

    // Before sending: whether the mailbox can be read back. The failure (imap_connect, imap_tls
    // or imap_auth) of the last login, when it failed and none succeeded since; a message sent
    // now could not be found. Until the first login is tried, waits for it (until `deadline`).
    boost::asio::awaitable<std::optional<imap::Failure>> login_failure(Clock::time_point deadline,
                                                                       StopSignal& stop);
    // Before sending: from now on a message with `token` (or a report returning it or
    // `message_id`) is recognised as this run's, and the IMAP commands about it are kept for its
    // transcript.
    void expect(const std::string& token, const std::string& target, std::string message_id = {});
    // The message was not sent (or not accepted): it is nobody's now; if it arrives anyway it
    // is cleaned up as a leftover.
    void abandon(const std::string& token);
    // Waits for the message until `deadline`, then writes the IMAP commands that looked for it
    // or removed it into `transcript`. After a lost or imap_failed verdict the token is
    // remembered, so a late arrival is counted and cleaned up.
    boost::asio::awaitable<WaitResult> wait(std::string token, Clock::time_point deadline,
                                            StopSignal& stop, Transcript& transcript);

    // How arrival is detected: "IDLE" or "polling every 1s" (for transcripts).
    std::string detection() const;
    std::size_t pending() const { return awaited_.pending(); }

  private:
    struct Folder;
    // What became of a message the tracker set out to remove.
    enum class Removal {
        removed,  // the server reported it gone by this session's doing
        left,     // someone else's to remove now, or gone already: a sweep looks again
        stays,    // kept, or the server refused: not tried again
        broken    // the session failed
    };

    // One folder, for as long as the tracker runs: a session, then reconnects with backoff.
    boost::asio::awaitable<void> watch(std::string folder, bool junk);
    // One session's life: login, SELECT, then checks for new mail until it fails or stops.
    boost::asio::awaitable<imap::Failure> watch_session(imap::Session& session, Folder& folder,
                                                        bool& was_up);
    // Login and SELECT; the failure, if any.
    boost::asio::awaitable<std::optional<imap::Failure>> open_folder(imap::Session& session,
                                                                     Folder& folder);
    boost::asio::awaitable<std::optional<imap::Failure>> log_in(imap::Session& session);
    // The mailbox's login worked, or failed: runs send again, or fail without sending.
    void login_settled(const std::optional<imap::Failure>& session_failure);
    // Refused credentials or an unverifiable certificate: waiting runs fail at once.
    bool login_refused() const;
    // Checks for new mail as it is announced (IDLE) or polled, until the session fails.
    boost::asio::awaitable<imap::Failure> follow_folder(imap::Session& session, Folder& folder);
    // An OAuth2 access token, when the login uses one.
    boost::asio::awaitable<std::optional<imap::Failure>> add_secret(imap::ClientOptions& options);
    boost::asio::awaitable<bool> discover_folders(imap::Session& session);
    // Looks at the mail new since the last look and, when `sweep`, again at the probe messages
    // left in the folder (Folder::recheck).
    boost::asio::awaitable<bool> check(imap::Session& session, Folder& folder, bool sweep);
    // Appends to `uids` the messages from folder.next_uid on that carry a token header, and
    // moves next_uid past them all.
    // Delivery status notifications (without a token header of their own) go to `reports`.
    boost::asio::awaitable<bool> scan_new(imap::Session& session, Folder& folder,
                                          std::vector<std::uint32_t>& uids,
                                          std::vector<std::uint32_t>& reports);
    boost::asio::awaitable<bool> examine(imap::Session& session, Folder& folder,
                                         const std::vector<std::uint32_t>& uids,
                                         Clock::time_point seen);
    // Reads each report whole: one about an awaited message tells its run, and one whose
    // returned token verifies is removed like a probe message (AwaitedMessages::classify_report).
    boost::asio::awaitable<bool> examine_reports(imap::Session& session, Folder& folder,
                                                 const std::vector<std::uint32_t>& uids);
    // Nothing with cleanup = "keep". `modseq`: the message's when it was fetched, to claim it
    // with (empty: no CONDSTORE).
    boost::asio::awaitable<Removal> remove(imap::Session& session, Folder& folder,
                                           std::uint32_t uid, const std::string& modseq,
                                           const std::string& token);
    // Flags the message \Deleted and expunges it from the selected folder.
    boost::asio::awaitable<Removal> expunge(imap::Session& session, const Folder& folder,
                                            std::uint32_t uid, const std::string& modseq,
                                            const std::string& token);
    // MOVE, else COPY and then expunge here; `copy` says where the trash's copy is, when the
    // server said (COPYUID).
    boost::asio::awaitable<Removal> move_to_trash(imap::Session& session, const Folder& folder,
                                                  std::uint32_t uid, const std::string& modseq,
                                                  const std::string& token,
                                                  std::optional<imap::Copy>& copy);
    // Expunges the copy this session put in the trash, once it is seen to be `token`'s
    // message, then selects `folder` again.
    boost::asio::awaitable<Removal> purge_from_trash(imap::Session& session, Folder& folder,
                                                     const imap::Copy& copy,
                                                     const std::string& token);
    // cleanup = "delete" moves messages to the trash and expunges them there.
    bool deletes_via_trash(const imap::Client& client) const;
    // SELECT; the failure, if any.
    boost::asio::awaitable<std::optional<imap::Failure>> select(imap::Session& session,
                                                                Folder& folder);
    // The server refused a step of removing the message (`what`): it stays, and is not tried
    // again.
    Removal refused(std::string_view what, const imap::Completion& reply);
    // Runs a command about `token`'s message, kept for its run's transcript.
    boost::asio::awaitable<std::optional<imap::Completion>> execute_for(const std::string& token,
                                                                        imap::Session& session,
                                                                        const Folder& folder,
                                                                        std::string command);
    // Waits `duration`; stop() ends it, and when `for_mail`, so does a message to wait for.
    boost::asio::awaitable<void> pause(Duration duration, bool for_mail = false);
    // Waits until the account may take one more session: the server's backoff over, a place
    // free among its sessions. Nothing once stopped.
    boost::asio::awaitable<std::optional<ImapAccount::Slot>> account_slot();
    // How soon to look again while messages are awaited (settings_.prompt_checks); nullopt
    // when none is, or while the server throttles the account.
    std::optional<Duration> prompt_check_interval() const;
    // Takes a session's failure, in the roundtrip probe's terms from here on.
    // `primary`: the mailbox's own session, whose state says whether mail can be watched.
    void session_failed(const imap::Failure& session_failure, bool primary);
    // Wakes the run waiting for `token`, if any, to look at its message again.
    void wake(const std::string& token);
    void report_pending(const std::string& target);

    boost::asio::any_io_executor executor_;
    MailboxSettings settings_;
    RoundtripEvents& events_;
    Duration age_limit_ = std::chrono::minutes(2);
    AwaitedMessages awaited_;
    MailboxExcerpts excerpts_;
    std::map<std::string, boost::asio::steady_timer*> waiters_;  // by token, while a run waits
    std::vector<imap::Session*> sessions_;                       // open ones, for stop()
    std::set<boost::asio::steady_timer*> sleepers_;              // pauses in progress, for stop()
    std::set<boost::asio::steady_timer*> poll_waits_;   // those between polls, for expect()
    std::set<boost::asio::steady_timer*> login_waits_;  // runs waiting for the first login
    std::optional<std::string> trash_folder_;
    bool junk_watchers_started_ = false;
    bool inbox_up_ = false;
    std::optional<imap::Failure> last_failure_;
    bool login_tried_ = false;  // the mailbox's session tried to log in at least once
    // Set while the mailbox's login fails (imap_connect, imap_tls, imap_auth): runs fail
    // without sending until a login works again.
    std::optional<imap::Failure> login_failure_;
    bool uidplus_warned_ = false;
    bool no_trash_warned_ = false;
    bool stopped_ = false;
};

}  // namespace mailcanary
