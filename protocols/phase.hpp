// The timed phases of a probe run, exported as the `phase` label. One table below declares each
// phase with its name (the enumerator is the name); docs/metrics.md lists them (a test checks).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace mailcanary {

#define MAILCANARY_PHASES(X) \
    X(resolve) \
    X(connect) \
    X(banner) \
    X(ehlo) \
    X(starttls) \
    X(tls_handshake) \
    X(auth) \
    X(mail) \
    X(rcpt) \
    X(data) \
    X(data_end) \
    X(quit) \
    /* IMAP only (resolve, connect, starttls, tls_handshake and auth are shared with SMTP). */ \
    X(greeting) \
    X(capability) \
    X(select) \
    X(logout)

enum class Phase {
#define MAILCANARY_ENUMERATOR(name) name,
    MAILCANARY_PHASES(MAILCANARY_ENUMERATOR)
#undef MAILCANARY_ENUMERATOR
};

inline constexpr std::array kAllPhases{
#define MAILCANARY_VALUE(name) Phase::name,
    MAILCANARY_PHASES(MAILCANARY_VALUE)
#undef MAILCANARY_VALUE
};

inline constexpr std::size_t kPhaseCount = kAllPhases.size();

constexpr std::string_view to_string(Phase phase) {
    constexpr std::array<std::string_view, kPhaseCount> kNames{
#define MAILCANARY_NAME(name) #name,
        MAILCANARY_PHASES(MAILCANARY_NAME)
#undef MAILCANARY_NAME
    };
    return kNames[static_cast<std::size_t>(phase)];
}

}  // namespace mailcanary
