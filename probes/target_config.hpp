// A target's configuration as the probe kinds read it: where the server is, how to reach it,
// and the settings of its probes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/duration.hpp"
#include "protocols/auth_config.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary {

// What the auth probe counts as success: the server accepting the credentials, or refusing
// them with a 5xx (a negative test, e.g. that a disabled account stays disabled).
enum class Expectation { success, reject };

// How far the accept probe goes: send the message, or stop after RCPT TO (then RSET) so that
// nothing is delivered.
enum class AcceptMode { data, rcpt };

// The probe message the accept probe sends.
struct MessageConfig {
    std::string from;             // envelope sender and From header
    std::vector<std::string> to;  // recipients, at least one
    std::string subject = "mailcanary probe";
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    AcceptMode mode = AcceptMode::data;

    bool operator==(const MessageConfig&) const = default;
};

// What the roundtrip probe does with its message once it has been measured.
enum class CleanupMode { delete_message, trash, keep };

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
    bool idle = true;                                  // use IDLE when the server offers it
    Duration poll_interval = std::chrono::seconds(1);  // NOOP polling without IDLE
    // While a probe message is awaited, also look every 5% of its time in flight (25 ms at the
    // least, poll_interval at the most): a server's delayed IDLE notice (Dovecot's 500 ms) or a
    // long poll_interval would otherwise be counted as delivery time.
    bool prompt_checks = true;
    // Trust only Authentication-Results headers from this authserv-id (RFC 8601 5); empty:
    // the topmost one, which the receiving server added last.
    std::string authserv_id;

    bool operator==(const RoundtripConfig&) const = default;
};

struct TargetConfig {
    std::string name;
    std::string host;
    uint16_t port = 25;  // 465 when tls = "implicit" and no port is given
    TlsMode tls = TlsMode::starttls;
    std::string helo;
    Duration interval{};
    Duration timeout{};
    std::vector<std::string> probes;  // names from the probe table, e.g. "connect"
    TlsOptions tls_options;
    std::optional<AuthConfig> auth;     // required when probes include "auth"
    bool allow_plaintext_auth = false;  // false: credentials are never sent without TLS
    Expectation expect = Expectation::success;
    std::optional<MessageConfig> message;  // required when probes include "accept" or "roundtrip"
    std::optional<RoundtripConfig> roundtrip;  // required when probes include "roundtrip"

    bool operator==(const TargetConfig&) const = default;
};

}  // namespace mailcanary
