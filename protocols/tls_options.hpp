// How a connection uses TLS: the mode, and what the client checks of the server.
#pragma once

#include <cstdint>
#include <string>

namespace mailcanary {

enum class TlsMode { none, starttls, implicit };

// The port a server listens on for `tls` when none is given: SMTP 465 (submissions, RFC 8314)
// for implicit TLS, else 25; IMAP 993 for implicit TLS, else 143.
constexpr std::uint16_t default_smtp_port(TlsMode tls) {
    return tls == TlsMode::implicit ? 465 : 25;
}
constexpr std::uint16_t default_imap_port(TlsMode tls) {
    return tls == TlsMode::implicit ? 993 : 143;
}

enum class TlsVersion { v1_0, v1_1, v1_2, v1_3 };

struct TlsOptions {
    std::string ca_file;      // empty: the system trust store
    std::string server_name;  // empty: the target's host (SNI and verification)
    bool insecure_skip_verify = false;
    TlsVersion min_version = TlsVersion::v1_2;

    bool operator==(const TlsOptions&) const = default;
};

}  // namespace mailcanary
