// The fixed set of reasons a probe run can fail for, exported as the `reason` label. One table
// below declares each reason with its name (the enumerator is the name): never add one without
// documenting it in docs/metrics.md (a test checks), never rename one.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mailcanary {

#define MAILCANARY_FAILURE_REASONS(X) \
    X(dns)                            \
    X(mx_none)                        \
    X(connect_refused)                \
    X(connect_timeout)                \
    X(network)                        \
    X(banner_timeout)                 \
    X(banner_rejected)                \
    X(ehlo_rejected)                  \
    X(starttls_unavailable)           \
    X(starttls_rejected)              \
    X(tls_handshake)                  \
    X(tls_cert_untrusted)             \
    X(tls_cert_expired)               \
    X(tls_cert_hostname)              \
    X(timeout)                        \
    X(protocol)                       \
    X(closed)                         \
    X(auth_unavailable)               \
    X(auth_rejected)                  \
    X(auth_disabled)                  \
    X(auth_tempfail)                  \
    X(auth_insecure)                  \
    X(oauth_token)                    \
    X(auth_accepted)                  \
    X(mail_rejected)                  \
    X(mail_tempfail)                  \
    X(rcpt_rejected)                  \
    X(rcpt_tempfail)                  \
    X(data_rejected)                  \
    X(data_tempfail)                  \
    X(message_rejected)               \
    X(message_tempfail)               \
    X(size_exceeded)                  \
    X(junk)                           \
    X(lost)                           \
    X(bounced)                        \
    X(imap_connect)                   \
    X(imap_tls)                       \
    X(imap_auth)                      \
    X(imap_protocol)                  \
    X(greeting_rejected)              \
    X(select_rejected)                \
    X(throttled)                      \
    X(descriptors_exhausted)

enum class FailureReason {
#define MAILCANARY_ENUMERATOR(name) name,
    MAILCANARY_FAILURE_REASONS(MAILCANARY_ENUMERATOR)
#undef MAILCANARY_ENUMERATOR
};

inline constexpr std::array kAllFailureReasons{
#define MAILCANARY_VALUE(name) FailureReason::name,
    MAILCANARY_FAILURE_REASONS(MAILCANARY_VALUE)
#undef MAILCANARY_VALUE
};

constexpr std::string_view to_string(FailureReason reason) {
    constexpr std::array<std::string_view, kAllFailureReasons.size()> kNames{
#define MAILCANARY_NAME(name) #name,
        MAILCANARY_FAILURE_REASONS(MAILCANARY_NAME)
#undef MAILCANARY_NAME
    };
    return kNames[static_cast<std::size_t>(reason)];
}

// A failure as a session reports it: the reason, and what failed in words (with the server's
// reply, if any). A server that throttles may say how long to wait before trying again.
struct Failure {
    Failure() = default;
    Failure(FailureReason failure_reason, std::string failure_detail,
            std::optional<std::chrono::milliseconds> hint = std::nullopt)
        : reason(failure_reason), detail(std::move(failure_detail)), backoff_hint(hint) {}

    FailureReason reason = FailureReason::protocol;
    std::string detail;
    std::optional<std::chrono::milliseconds> backoff_hint;
};

}  // namespace mailcanary
