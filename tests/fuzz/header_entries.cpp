// What the round trip reads in a delivered message's header: Authentication-Results, the header
// block, the Received dates.
#include <algorithm>
#include <chrono>

#include "fuzz/entries.hpp"
#include "fuzz/properties.hpp"
#include "protocols/mail_headers.hpp"

namespace mailcanary::fuzz {
namespace {

// Every verdict is one of the method's bounded set of results: fit for a metric label.
void require_bounded(const AuthVerdicts& verdicts) {
    for (const AuthMethod method : kAuthMethods) {
        const auto& verdict = verdicts.*verdict_member(method);
        if (!verdict) continue;
        const auto results = results_for(method);
        require(std::find(results.begin(), results.end(), *verdict) != results.end(),
                "a verdict is one of its method's results");
    }
}

}  // namespace

void auth_results(std::string_view input) {
    if (const auto parsed = parse_authentication_results(input)) {
        require_bounded(parsed->verdicts);
        require(parsed->authserv_id.size() <= input.size(), "the authserv-id comes from the input");
    }
    // The same value as the header of a message, among forged ones below it.
    const auto fields = parse_header_block("Authentication-Results: " + std::string(input) +
                                           "\r\nAuthentication-Results: x; spf=pass\r\n");
    require_bounded(message_verdicts(fields, ""));
    require_bounded(message_verdicts(fields, "mx.example.test"));
}

void mail_headers(std::string_view input) {
    const auto fields = parse_header_block(input);
    for (const HeaderField& field : fields) {
        require(!field.name.empty() && std::all_of(field.name.begin(), field.name.end(),
                                                   [](char c) { return c > 32 && c < 127; }),
                "a field name is printable ASCII without spaces");
        require(field.value.find('\n') == std::string::npos, "a field value is unfolded");
    }
    require_bounded(message_verdicts(fields, ""));
    if (const auto span = received_span(fields)) {
        require(span->count() >= 0, "a delivery time is never negative");
    }
    if (const auto date = parse_rfc5322_date(input)) {
        using namespace std::chrono;
        require(*date >= sys_days(year{1899} / December / 31), "a date has a year from 1900");
    }
}

}  // namespace mailcanary::fuzz
