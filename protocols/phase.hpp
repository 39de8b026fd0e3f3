// The timed phases of a probe run. Exported as the `phase` label.
#pragma once

#include <array>
#include <string_view>

namespace mailcanary {

enum class Phase {
    resolve,
    connect,
    banner,
    ehlo,
    starttls,
    tls_handshake,
    auth,
    mail,
    rcpt,
    data,
    data_end,
    quit,
    // IMAP only (resolve, connect, starttls, tls_handshake and auth are shared with SMTP).
    greeting,
    capability,
    select,
    logout,
};

inline constexpr std::array kAllPhases = {
    Phase::resolve,  Phase::connect,       Phase::banner,   Phase::ehlo,
    Phase::starttls, Phase::tls_handshake, Phase::auth,     Phase::mail,
    Phase::rcpt,     Phase::data,          Phase::data_end, Phase::quit,
    Phase::greeting, Phase::capability,    Phase::select,   Phase::logout,
};

inline constexpr std::size_t kPhaseCount = kAllPhases.size();

std::string_view to_string(Phase phase);

}  // namespace mailcanary
