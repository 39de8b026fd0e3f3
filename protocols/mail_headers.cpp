#include "protocols/mail_headers.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace mailcanary {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ldh(char c) { return is_alpha(c) || is_digit(c) || c == '-'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 2045 token: what an authserv-id is when not quoted. Octets above 127 are let in for
// internationalised names (RFC 8601 2.2 via RFC 6532).
bool is_token_char(char c) {
    const auto octet = static_cast<unsigned char>(c);
    return octet > 32 && octet != 127 &&
           std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// A cursor over an Authentication-Results value. Comments and quoted strings may hold ";" and
// "=", so everything that skips text goes through here; one that never closes marks the value
// broken, since nothing after it can be placed.
class AuthResultsReader {
  public:
    explicit AuthResultsReader(std::string_view text) : text_(text) {}

    bool at_end() const { return pos_ == text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }
    void advance() { ++pos_; }
    std::size_t position() const { return pos_; }
    void rewind(std::size_t position) { pos_ = position; }
    bool broken() const { return broken_; }

    // Whitespace and comments, which nest and may hold quoted pairs (RFC 5322 3.2.2).
    void skip_cfws() {
        for (;;) {
            while (!at_end() && is_wsp(peek())) advance();
            if (peek() != '(') return;
            std::size_t depth = 0;
            do {
                const char c = text_[pos_++];
                if (c == '\\' && !at_end()) {
                    advance();
                } else if (c == '(') {
                    ++depth;
                } else if (c == ')') {
                    --depth;
                }
            } while (depth > 0 && !at_end());
            if (depth > 0) {
                broken_ = true;
                return;
            }
        }
    }

    template <typename Predicate>
    std::string_view take_while(Predicate predicate) {
        const std::size_t start = pos_;
        while (!at_end() && predicate(peek())) advance();
        return text_.substr(start, pos_ - start);
    }

    // RFC 2045 value: a token, or a quoted string without its quotes and escapes.
    std::string value() {
        if (peek() != '"') return std::string(take_while(is_token_char));
        advance();
        std::string out;
        while (!at_end()) {
            const char c = text_[pos_++];
            if (c == '"') return out;
            if (c == '\\' && !at_end()) {
                out += text_[pos_++];
            } else {
                out += c;
            }
        }
        broken_ = true;
        return out;
    }

    // Passes over the rest of a resinfo (reason, properties, anything unexpected) up to the ";"
    // that ends it, or the end.
    void skip_to_separator() {
        while (!at_end() && !broken_ && peek() != ';') {
            if (peek() == '(') {
                skip_cfws();
            } else if (peek() == '"') {
                value();
            } else {
                advance();
            }
        }
    }

  private:
    std::string_view text_;
    std::size_t pos_ = 0;
    bool broken_ = false;
};

struct MethodResult {
    std::string_view method;
    std::string_view result;
};

// methodspec = [CFWS] method [[CFWS] "/" [CFWS] version] [CFWS] "=" [CFWS] result. nullopt when
// the resinfo does not start like one ("none", or something unexpected).
std::optional<MethodResult> read_methodspec(AuthResultsReader& reader) {
    reader.skip_cfws();
    const auto method = reader.take_while(is_ldh);
    reader.skip_cfws();
    if (method.empty() || reader.broken()) return std::nullopt;
    if (reader.peek() == '/') {
        reader.advance();
        reader.skip_cfws();
        if (reader.take_while(is_digit).empty()) return std::nullopt;
        reader.skip_cfws();
    }
    if (reader.peek() != '=') return std::nullopt;
    reader.advance();
    reader.skip_cfws();
    const auto result = reader.take_while(is_ldh);
    // "pass" must end there: "pass/x" or "pass=x" is not a result.
    const char next = reader.peek();
    if (result.empty() || !(reader.at_end() || next == ';' || next == '(' || is_wsp(next))) {
        return std::nullopt;
    }
    return MethodResult{method, result};
}

// The RFC token for a result as written, or nullopt when the method has no such result.
std::optional<std::string_view> known_result(AuthMethod method, std::string_view written) {
    // RFC 5451 called SPF's "fail" "hardfail"; RFC 7001 renamed it, old software still writes it.
    if (method == AuthMethod::spf && iequals(written, "hardfail")) written = "fail";
    for (const std::string_view result : results_for(method)) {
        if (iequals(written, result)) return result;
    }
    return std::nullopt;
}

void record(AuthVerdicts& verdicts, const MethodResult& found) {
    for (const AuthMethod method : kAuthMethods) {
        if (!iequals(found.method, to_string(method))) continue;
        const auto result = known_result(method, found.result);
        if (!result) return;
        auto& verdict = verdicts.*verdict_member(method);
        if (!verdict || *result == "pass") verdict = std::string(*result);
        return;
    }
}

// Digits only, min_digits to max_digits of them.
std::optional<int> number(std::string_view digits, std::size_t min_digits, std::size_t max_digits) {
    if (digits.size() < min_digits || digits.size() > max_digits ||
        !std::all_of(digits.begin(), digits.end(), is_digit)) {
        return std::nullopt;
    }
    int value = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), value);
    return value;
}

constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};

std::optional<unsigned> month_number(std::string_view word) {
    for (std::size_t i = 0; i < kMonths.size(); ++i) {
        if (iequals(word, kMonths[i])) return static_cast<unsigned>(i + 1);
    }
    return std::nullopt;
}

bool is_day_name(std::string_view word) {
    for (const std::string_view day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}) {
        if (iequals(word, day)) return true;
    }
    return false;
}

// "+hhmm", "-hhmm" or a zone name (RFC 5322 4.3), as minutes east of UTC.
std::optional<int> zone_offset_minutes(std::string_view zone) {
    if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-')) {
        const auto hours = number(zone.substr(1, 2), 2, 2);
        const auto minutes = number(zone.substr(3, 2), 2, 2);
        if (!hours || !minutes || *hours > 23 || *minutes > 59) return std::nullopt;
        const int offset = *hours * 60 + *minutes;
        return zone[0] == '-' ? -offset : offset;
    }
    static constexpr std::pair<std::string_view, int> kNamed[] = {
        {"ut", 0},        {"utc", 0},       {"gmt", 0},       {"z", 0},
        {"est", -5 * 60}, {"edt", -4 * 60}, {"cst", -6 * 60}, {"cdt", -5 * 60},
        {"mst", -7 * 60}, {"mdt", -6 * 60}, {"pst", -8 * 60}, {"pdt", -7 * 60}};
    for (const auto& [name, offset] : kNamed) {
        if (iequals(zone, name)) return offset;
    }
    // The other military letters were defined with the wrong sign in RFC 822; RFC 5322 4.3 says
    // to read them as "-0000", a time in UTC.
    if (zone.size() == 1 && is_alpha(zone[0]) && lower(zone[0]) != 'j') return 0;
    return std::nullopt;
}

// The text with comments (nested, with quoted pairs) and commas turned into spaces, cut into
// words. nullopt when a comment never closes.
std::optional<std::vector<std::string_view>> date_words(std::string_view text,
                                                        std::string& storage) {
    storage.clear();
    std::size_t depth = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (depth > 0 && c == '\\') {
            ++i;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')' && depth > 0) {
            --depth;
            if (depth == 0) storage += ' ';
        } else if (depth == 0) {
            storage += c == ',' ? ' ' : c;
        }
    }
    if (depth > 0) return std::nullopt;
    std::vector<std::string_view> words;
    std::string_view rest = storage;
    for (;;) {
        while (!rest.empty() && is_wsp(rest.front())) rest.remove_prefix(1);
        if (rest.empty()) return words;
        std::size_t end = 0;
        while (end < rest.size() && !is_wsp(rest[end])) ++end;
        words.push_back(rest.substr(0, end));
        rest.remove_prefix(end);
    }
}

}  // namespace

std::vector<HeaderField> parse_header_block(std::string_view block) {
    std::vector<HeaderField> fields;
    bool in_field = false;  // whether a continuation line belongs to fields.back()
    while (!block.empty()) {
        const auto newline = block.find('\n');
        std::string_view line = block.substr(0, newline);
        block.remove_prefix(newline == std::string_view::npos ? block.size() : newline + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // the end of the header block
        if (line.front() == ' ' || line.front() == '\t') {
            // Unfolding (RFC 5322 2.2.3) removes the line break and keeps the whitespace.
            if (in_field) fields.back().value += line;
            continue;
        }
        const auto colon = line.find(':');
        // RFC 5322 obs-optional allows whitespace before the colon.
        const auto name =
            colon == std::string_view::npos ? std::string_view{} : trim(line.substr(0, colon));
        in_field = !name.empty() &&
                   std::all_of(name.begin(), name.end(), [](char c) { return c > 32 && c < 127; });
        if (in_field) fields.push_back({std::string(name), std::string(line.substr(colon + 1))});
    }
    for (auto& field : fields) field.value = std::string(trim(field.value));
    return fields;
}

std::string_view message_body(std::string_view message) {
    for (std::size_t at = 0; at < message.size();) {
        const auto newline = message.find('\n', at);
        if (newline == std::string_view::npos) break;
        const std::string_view line = message.substr(at, newline - at);
        at = newline + 1;
        if (line.empty() || line == "\r") return message.substr(at);
    }
    return {};
}

std::vector<std::string> header_values(const std::vector<HeaderField>& fields,
                                       std::string_view name) {
    std::vector<std::string> values;
    for (const auto& field : fields) {
        if (iequals(field.name, name)) values.push_back(field.value);
    }
    return values;
}

std::optional<std::string> AuthVerdicts::*verdict_member(AuthMethod method) {
    switch (method) {
        case AuthMethod::spf:
            return &AuthVerdicts::spf;
        case AuthMethod::dkim:
            return &AuthVerdicts::dkim;
        case AuthMethod::dmarc:
            break;
    }
    return &AuthVerdicts::dmarc;
}

std::string_view to_string(AuthMethod method) {
    switch (method) {
        case AuthMethod::spf:
            return "spf";
        case AuthMethod::dkim:
            return "dkim";
        case AuthMethod::dmarc:
            break;
    }
    return "dmarc";
}

std::span<const std::string_view> results_for(AuthMethod method) {
    static constexpr std::array<std::string_view, 8> kSpf = {
        "none", "neutral", "pass", "fail", "softfail", "policy", "temperror", "permerror"};
    static constexpr std::array<std::string_view, 7> kDkim = {
        "none", "pass", "fail", "policy", "neutral", "temperror", "permerror"};
    static constexpr std::array<std::string_view, 5> kDmarc = {"none", "pass", "fail", "temperror",
                                                               "permerror"};
    switch (method) {
        case AuthMethod::spf:
            return kSpf;
        case AuthMethod::dkim:
            return kDkim;
        case AuthMethod::dmarc:
            break;
    }
    return kDmarc;
}

std::optional<ParsedAuthResults> parse_authentication_results(std::string_view value) {
    AuthResultsReader reader(value);
    ParsedAuthResults parsed;
    reader.skip_cfws();
    const std::size_t start = reader.position();
    const bool quoted = reader.peek() == '"';
    std::string id = reader.value();
    reader.skip_cfws();
    if (reader.broken()) return std::nullopt;

    // Microsoft 365 leaves the authserv-id out and starts with "spf=pass ...".
    const bool no_authserv_id =
        !quoted && !id.empty() && (reader.peek() == '=' || reader.peek() == '/');
    if (no_authserv_id) {
        reader.rewind(start);
    } else {
        if (id.empty()) return std::nullopt;
        parsed.authserv_id = std::move(id);
        if (!reader.take_while(is_digit).empty()) reader.skip_cfws();  // authres-version
        if (!reader.at_end() && reader.peek() != ';') return std::nullopt;
    }

    bool first = true;
    for (;;) {
        if (!first || !no_authserv_id) {
            reader.skip_cfws();
            if (reader.at_end()) break;
            reader.advance();  // the ';': skip_to_separator stops at nothing else
        }
        first = false;
        const auto found = read_methodspec(reader);
        if (found) record(parsed.verdicts, *found);
        reader.skip_to_separator();
        if (reader.broken()) return std::nullopt;
    }
    if (reader.broken()) return std::nullopt;
    return parsed;
}

bool authserv_id_matches(std::string_view id, std::string_view trusted) {
    if (!trusted.starts_with("*.")) return iequals(id, trusted);
    const std::string_view suffix = trusted.substr(1);  // ".mail.yahoo.com"
    return id.size() > suffix.size() && iequals(id.substr(id.size() - suffix.size()), suffix);
}

std::vector<std::string> authserv_ids(const std::vector<HeaderField>& fields) {
    std::vector<std::string> ids;
    for (const auto& value : header_values(fields, "Authentication-Results")) {
        if (const auto parsed = parse_authentication_results(value)) {
            ids.push_back(parsed->authserv_id);
        }
    }
    return ids;
}

AuthVerdicts message_verdicts(const std::vector<HeaderField>& fields,
                              std::string_view trusted_authserv_id) {
    const auto is_auth_results = [&](std::size_t at) {
        return iequals(fields[at].name, "Authentication-Results");
    };
    for (std::size_t at = 0; at < fields.size(); ++at) {
        if (!is_auth_results(at)) continue;
        const auto parsed = parse_authentication_results(fields[at].value);
        // Without a trusted id the topmost header is the one, usable or not: falling back to a
        // lower one would let the sender's own headers speak.
        if (trusted_authserv_id.empty() && !parsed) return {};
        if (!parsed || (!trusted_authserv_id.empty() &&
                        !authserv_id_matches(parsed->authserv_id, trusted_authserv_id))) {
            continue;
        }
        // A server may split its results over several headers, one right below the other
        // (Fastmail: one for ARC, one for BIMI, one for DKIM, DMARC and SPF): those count too.
        AuthVerdicts verdicts = parsed->verdicts;
        for (std::size_t next = at + 1; next < fields.size() && is_auth_results(next); ++next) {
            const auto more = parse_authentication_results(fields[next].value);
            if (!more || !iequals(more->authserv_id, parsed->authserv_id)) break;
            for (const AuthMethod method : kAuthMethods) {
                const auto& found = more->verdicts.*verdict_member(method);
                auto& verdict = verdicts.*verdict_member(method);
                if (found && (!verdict || *found == "pass")) verdict = found;
            }
        }
        return verdicts;
    }
    return {};
}

std::optional<std::chrono::system_clock::time_point> parse_rfc5322_date(std::string_view text) {
    std::string storage;
    const auto words = date_words(text, storage);
    if (!words) return std::nullopt;
    std::size_t next = 0;
    const auto word = [&]() -> std::string_view {
        return next < words->size() ? (*words)[next++] : std::string_view{};
    };

    std::string_view first = word();
    if (is_day_name(first)) first = word();
    const std::string_view second = word();
    std::optional<int> day = number(first, 1, 2);
    std::optional<unsigned> month = month_number(second);
    if (!day || !month) {  // "Feb 15 2002"
        day = number(second, 1, 2);
        month = month_number(first);
    }
    const std::string_view year_word = word();
    std::optional<int> year = number(year_word, 2, 4);
    if (!day || !month || !year) return std::nullopt;
    // RFC 5322 4.3: two digits are 1950-2049, three are added to 1900.
    if (year_word.size() == 2) *year += *year < 50 ? 2000 : 1900;
    if (year_word.size() == 3) *year += 1900;
    if (*year < 1900) return std::nullopt;

    // hh:mm[:ss]
    const std::string_view time = word();
    const auto first_colon = time.find(':');
    if (first_colon == std::string_view::npos) return std::nullopt;
    const auto second_colon = time.find(':', first_colon + 1);
    const auto hour = number(time.substr(0, first_colon), 1, 2);
    const auto minute = number(time.substr(first_colon + 1, second_colon - first_colon - 1), 2, 2);
    const auto second_of_minute = second_colon == std::string_view::npos
                                      ? std::optional<int>(0)
                                      : number(time.substr(second_colon + 1), 2, 2);
    if (!hour || !minute || !second_of_minute || *hour > 23 || *minute > 59 ||
        *second_of_minute > 60) {
        return std::nullopt;
    }

    const std::string_view zone = word();
    const auto offset = zone_offset_minutes(zone);
    if (!offset) return std::nullopt;
    // "+0000 UTC": some servers name the zone without the comment's parentheses.
    const std::string_view trailing = word();
    const bool numeric_zone = zone.front() == '+' || zone.front() == '-';
    if (!trailing.empty() && (!numeric_zone || trailing.size() > 5 ||
                              !std::all_of(trailing.begin(), trailing.end(), is_alpha))) {
        return std::nullopt;
    }
    if (next < words->size()) return std::nullopt;

    const std::chrono::year_month_day date{std::chrono::year{*year}, std::chrono::month{*month},
                                           std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok()) return std::nullopt;
    const std::chrono::sys_seconds at = std::chrono::sys_days(date) + std::chrono::hours(*hour) +
                                        std::chrono::minutes(*minute - *offset) +
                                        std::chrono::seconds(*second_of_minute);
    // system_clock counts nanoseconds, which end in 2262: a later date would overflow.
    using std::chrono::system_clock;
    if (at > std::chrono::time_point_cast<std::chrono::seconds>(system_clock::time_point::max())) {
        return std::nullopt;
    }
    return system_clock::time_point(at);
}

std::optional<std::chrono::seconds> received_span(const std::vector<HeaderField>& fields) {
    std::optional<std::chrono::system_clock::time_point> topmost;
    std::optional<std::chrono::system_clock::time_point> bottommost;
    int dated = 0;
    for (const auto& value : header_values(fields, "Received")) {
        const auto semicolon = value.rfind(';');
        if (semicolon == std::string::npos) continue;
        const auto date = parse_rfc5322_date(std::string_view(value).substr(semicolon + 1));
        if (!date) continue;
        if (!topmost) topmost = date;
        bottommost = date;
        ++dated;
    }
    if (dated < 2 || *topmost < *bottommost) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(*topmost - *bottommost);
}

}  // namespace mailcanary
