// The imap probe: can users read their mail? Connects to an IMAP server (implicit TLS or
// STARTTLS), logs in as [targets.imap] says, SELECTs a mailbox and LOGs OUT, timing each phase.
#pragma once

#include <cstdint>
#include <string>

#include "probes/probe_kind.hpp"

namespace mailcanary {

// [targets.imap]
struct ImapOptions {
    std::string host;                 // default: the target's host
    uint16_t port = 993;              // default: 993 for "implicit", else 143
    TlsMode tls = TlsMode::implicit;  // none | starttls | implicit
    TlsOptions tls_options;           // [targets.imap.tls_options]
    AuthConfig auth;                  // username and one secret source, as for [targets.auth]
    std::string mailbox = "INBOX";
    bool allow_plaintext_auth = false;  // false: credentials are never sent without TLS

    bool operator==(const ImapOptions&) const = default;
};

const ProbeKind& imap_probe();

}  // namespace mailcanary
