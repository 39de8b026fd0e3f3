// What a run measured on the wire besides success, filled in by the protocol drivers and the
// probe, turned into series by the scheduler.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/mail_headers.hpp"
#include "protocols/phase.hpp"

namespace mailcanary {

// The certificate the server presented for itself (the chain's first), read while it was being
// verified: known whether verification accepted it or not.
struct CertificateFacts {
    std::string subject;  // one line, RFC 2253: "CN=mx1.example.com,O=Example"
    std::string issuer;
    std::vector<std::string> alt_names;  // the DNS names and IP addresses of subjectAltName
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;

    bool operator==(const CertificateFacts&) const = default;
};

// One stretch of a run spent in a phase, in the order the run went through them (a phase
// entered twice, EHLO before and after STARTTLS, has two).
struct PhaseSpan {
    Phase phase;
    std::chrono::steady_clock::time_point started;
    std::chrono::nanoseconds duration;
};

// What one run measured besides success: filled by the probe, turned into series by the
// scheduler. A fresh one per run, so nothing leaks from one run into the next.
struct RunMetrics {
    std::array<std::optional<std::chrono::nanoseconds>, kPhaseCount> phase_durations;
    std::vector<std::pair<std::string_view, int>> replies;  // (command, reply code)
    std::vector<PhaseSpan> phase_spans;                     // the same time, as a waterfall
    std::optional<std::chrono::system_clock::time_point> cert_not_after;  // earliest in chain
    // Negotiated once the server's hello arrived: known when verification then failed, too.
    std::optional<unsigned> ip_version;  // 4 or 6: the address the run's first connection reached
    std::optional<std::string> tls_version;
    std::optional<std::string> tls_cipher;
    std::optional<CertificateFacts> certificate;
    // A message was sent: when the server accepted it (the final 250), and how long that took
    // from the start of the run.
    std::optional<std::chrono::steady_clock::time_point> message_accepted_at;
    std::optional<std::chrono::nanoseconds> submission;
    // The roundtrip probe's message arrived (in the mailbox or a junk folder).
    struct Delivery {
        std::chrono::nanoseconds after_acceptance{};  // from the final 250 to being seen
        bool junk = false;
        AuthVerdicts verdicts;  // from the trusted Authentication-Results header
        // Between the first and last Received headers, by the servers' clocks (1 s resolution).
        std::optional<std::chrono::seconds> by_server_clocks;
    };
    std::optional<Delivery> delivery;
    // What a probe kind measured for its own series (ProbeKind::extra_series), by name: the
    // common series need not know every kind's figures.
    std::vector<std::pair<std::string_view, double>> kind_values;

    void add_phase(Phase phase, std::chrono::nanoseconds elapsed) {
        auto& slot = phase_durations[static_cast<std::size_t>(phase)];
        slot = slot.value_or(std::chrono::nanoseconds::zero()) + elapsed;
    }
};

}  // namespace mailcanary
