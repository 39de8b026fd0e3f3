// The roundtrip probe: is mail delivered, and how fast? It sends a message as the accept probe
// does and follows it into a mailbox read over IMAP ([targets.roundtrip]).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/duration.hpp"
#include "probes/mailbox_registry.hpp"
#include "probes/probe_kind.hpp"

namespace mailcanary {

// [targets.roundtrip]: the mailbox the probe message is followed into, read over IMAP.
struct RoundtripConfig {
    std::string imap_host;                 // default: the target's host
    uint16_t imap_port = 993;              // default: 993 for "implicit", else 143
    TlsMode imap_tls = TlsMode::implicit;  // none | starttls | implicit
    TlsOptions tls_options;                // [targets.roundtrip.tls_options]
    AuthConfig auth;                       // username and one secret source, as for SMTP
    std::string mailbox = "INBOX";
    // Unset: the folder with the \Junk special-use flag, else those of Junk, Spam and
    // [Gmail]/Spam that exist. Set (even empty): exactly these.
    std::optional<std::vector<std::string>> junk_folders;
    Duration timeout = std::chrono::minutes(2);  // from the final 250 to "lost"
    CleanupMode cleanup = CleanupMode::delete_message;
    DeleteMethod delete_method = DeleteMethod::automatic;  // how "delete" deletes
    bool idle = true;                                      // use IDLE when the server offers it
    Duration poll_interval = std::chrono::seconds(1);      // NOOP polling without IDLE
    // While a probe message is awaited, also look every 5% of its time in flight (25 ms at the
    // least, poll_interval at the most): a server's delayed IDLE notice (Dovecot's 500 ms) or a
    // long poll_interval would otherwise be counted as delivery time.
    bool prompt_checks = true;
    // Trust only Authentication-Results headers from this authserv-id (RFC 8601 5); empty:
    // the topmost one, which the receiving server added last.
    std::string authserv_id;
    // A folder of the same account where bounces (delivery status notifications to the
    // envelope sender, [targets.message] from) are delivered, watched beside the mailbox; empty:
    // they are looked for in the mailbox and junk folders only.
    std::string bounce_mailbox;

    bool operator==(const RoundtripConfig&) const = default;
};

const ProbeKind& roundtrip_probe();
// Where the kind's mailbox trackers report what happens outside runs (late arrivals, leftovers,
// messages in flight): its series in `resources`.
RoundtripEvents& roundtrip_events(ProbeResources& resources);

}  // namespace mailcanary
