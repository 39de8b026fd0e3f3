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
};

inline constexpr std::array kAllPhases = {
    Phase::resolve,  Phase::connect,       Phase::banner,   Phase::ehlo,
    Phase::starttls, Phase::tls_handshake, Phase::auth,     Phase::mail,
    Phase::rcpt,     Phase::data,          Phase::data_end, Phase::quit,
};

inline constexpr std::size_t kPhaseCount = kAllPhases.size();

std::string_view to_string(Phase phase);

}  // namespace mailcanary
