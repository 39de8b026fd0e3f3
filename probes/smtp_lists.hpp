// The phases and failure reasons of the SMTP probe kinds, each kind's lists built from the one
// before it: accept does what auth does (when [targets.auth] is set), and more.
#pragma once

#include <array>

#include "common/joined.hpp"
#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"

namespace mailcanary::smtp_lists {

inline constexpr std::array kConnectPhases{Phase::resolve, Phase::connect,  Phase::banner,
                                           Phase::ehlo,    Phase::starttls, Phase::tls_handshake,
                                           Phase::quit};
inline constexpr auto kAuthPhases = joined(kConnectPhases, std::array{Phase::auth});
inline constexpr auto kAcceptPhases =
    joined(kAuthPhases, std::array{Phase::mail, Phase::rcpt, Phase::data, Phase::data_end});

inline constexpr std::array kConnectReasons{
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
    FailureReason::throttled,
    FailureReason::descriptors_exhausted,
};
// Logging in: what any kind that sends [targets.auth] credentials may fail for.
inline constexpr auto kLoginReasons = joined(
    kConnectReasons, std::array{FailureReason::auth_unavailable, FailureReason::auth_rejected,
                                FailureReason::auth_disabled, FailureReason::auth_tempfail,
                                FailureReason::auth_insecure, FailureReason::oauth_token});
inline constexpr auto kAuthReasons =
    joined(kLoginReasons, std::array{FailureReason::auth_accepted});
inline constexpr auto kAcceptReasons = joined(
    kLoginReasons, std::array{FailureReason::mail_rejected, FailureReason::mail_tempfail,
                              FailureReason::rcpt_rejected, FailureReason::rcpt_tempfail,
                              FailureReason::data_rejected, FailureReason::data_tempfail,
                              FailureReason::message_rejected, FailureReason::message_tempfail,
                              FailureReason::size_exceeded});

}  // namespace mailcanary::smtp_lists
