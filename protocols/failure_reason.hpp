// The fixed set of reasons a probe run can fail for. Exported as the `reason` label: never add a
// value without documenting it in docs/metrics.md, never rename one.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace mailcanary {

enum class FailureReason {
    dns,
    connect_refused,
    connect_timeout,
    network,
    banner_timeout,
    banner_rejected,
    ehlo_rejected,
    starttls_unavailable,
    starttls_rejected,
    tls_handshake,
    tls_cert_untrusted,
    tls_cert_expired,
    tls_cert_hostname,
    timeout,
    protocol,
    closed,
    auth_unavailable,
    auth_rejected,
    auth_tempfail,
    auth_insecure,
    oauth_token,
    auth_accepted,
    mail_rejected,
    mail_tempfail,
    rcpt_rejected,
    rcpt_tempfail,
    data_rejected,
    data_tempfail,
    message_rejected,
    message_tempfail,
    size_exceeded,
    junk,
    lost,
    imap_connect,
    imap_tls,
    imap_auth,
    imap_protocol,
    greeting_rejected,
    select_rejected,
};

inline constexpr std::array kAllFailureReasons = {
    FailureReason::dns,
    FailureReason::connect_refused,
    FailureReason::connect_timeout,
    FailureReason::network,
    FailureReason::banner_timeout,
    FailureReason::banner_rejected,
    FailureReason::ehlo_rejected,
    FailureReason::starttls_unavailable,
    FailureReason::starttls_rejected,
    FailureReason::tls_handshake,
    FailureReason::tls_cert_untrusted,
    FailureReason::tls_cert_expired,
    FailureReason::tls_cert_hostname,
    FailureReason::timeout,
    FailureReason::protocol,
    FailureReason::closed,
    FailureReason::auth_unavailable,
    FailureReason::auth_rejected,
    FailureReason::auth_tempfail,
    FailureReason::auth_insecure,
    FailureReason::oauth_token,
    FailureReason::auth_accepted,
    FailureReason::mail_rejected,
    FailureReason::mail_tempfail,
    FailureReason::rcpt_rejected,
    FailureReason::rcpt_tempfail,
    FailureReason::data_rejected,
    FailureReason::data_tempfail,
    FailureReason::message_rejected,
    FailureReason::message_tempfail,
    FailureReason::size_exceeded,
    FailureReason::junk,
    FailureReason::lost,
    FailureReason::imap_connect,
    FailureReason::imap_tls,
    FailureReason::imap_auth,
    FailureReason::imap_protocol,
    FailureReason::greeting_rejected,
    FailureReason::select_rejected,
};

std::string_view to_string(FailureReason reason);

// A failure as a session reports it: the reason, and what failed in words (with the server's
// reply, if any).
struct Failure {
    FailureReason reason = FailureReason::protocol;
    std::string detail;
};

}  // namespace mailcanary
