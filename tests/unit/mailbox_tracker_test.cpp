// The mailbox tracker's one mapping: a session's fine failure reason to the roundtrip probe's
// public, coarse one (docs/metrics.md), so the probe's outcomes stay as they were.
#include <gtest/gtest.h>

#include "probes/mailbox_tracker.hpp"

namespace mailcanary {
namespace {

TEST(RoundtripReason, SessionReasonsMapToTheProbesContract) {
    const std::vector<std::pair<FailureReason, FailureReason>> expected{
        {FailureReason::dns, FailureReason::imap_connect},
        {FailureReason::connect_refused, FailureReason::imap_connect},
        {FailureReason::connect_timeout, FailureReason::imap_connect},
        {FailureReason::network, FailureReason::imap_connect},
        {FailureReason::closed, FailureReason::imap_connect},
        {FailureReason::timeout, FailureReason::imap_connect},
        {FailureReason::greeting_rejected, FailureReason::imap_connect},
        {FailureReason::tls_handshake, FailureReason::imap_tls},
        {FailureReason::tls_cert_untrusted, FailureReason::imap_tls},
        {FailureReason::tls_cert_expired, FailureReason::imap_tls},
        {FailureReason::tls_cert_hostname, FailureReason::imap_tls},
        {FailureReason::starttls_unavailable, FailureReason::imap_tls},
        {FailureReason::starttls_rejected, FailureReason::imap_tls},
        {FailureReason::auth_unavailable, FailureReason::imap_auth},
        {FailureReason::auth_rejected, FailureReason::imap_auth},
        {FailureReason::auth_disabled, FailureReason::imap_auth},
        {FailureReason::auth_tempfail, FailureReason::imap_auth},
        {FailureReason::auth_insecure, FailureReason::imap_auth},
        {FailureReason::oauth_token, FailureReason::imap_auth},
        {FailureReason::protocol, FailureReason::imap_protocol},
        {FailureReason::select_rejected, FailureReason::imap_protocol},
    };
    for (const auto& [session, roundtrip] : expected) {
        EXPECT_EQ(to_string(roundtrip_reason(session)), to_string(roundtrip)) << to_string(session);
    }
}

TEST(RoundtripReason, EveryReasonEndsAsOneOfTheFourImapReasons) {
    for (const FailureReason reason : kAllFailureReasons) {
        const FailureReason mapped = roundtrip_reason(reason);
        EXPECT_TRUE(mapped == FailureReason::imap_connect || mapped == FailureReason::imap_tls ||
                    mapped == FailureReason::imap_auth || mapped == FailureReason::imap_protocol)
            << to_string(reason) << " -> " << to_string(mapped);
    }
}

}  // namespace
}  // namespace mailcanary
