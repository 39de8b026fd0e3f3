#include "protocols/smtp_queue_id.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <span>
#include <vector>

#include "common/text.hpp"
#include "protocols/smtp_reply.hpp"

namespace mailcanary::smtp {
namespace {

// The reply forms that carry an id, matched word by word against the whole text (after an
// enhanced status code), case aside. "..." is any number of words, "#" a number, "*" any one
// word; "{}" is the id (with the rest of its word, as in "id={}", written around it), "{#}" an
// id with a digit in it. The first form that matches names the id.
constexpr std::array<std::string_view, 10> kForms{
    "... queued as {}",                   // Postfix, SendGrid
    "... requeued as {}",                 // Mandrill
    "... queued on * as {}",              // Yandex
    "... id={}",                          // Exim
    "{} Message accepted for delivery",   // Sendmail, OpenSMTPD
    "<{}> ... Queued mail for delivery",  // Exchange, Microsoft 365: the Internet Message-ID
    "OK # {} - gsmtp",                    // Gmail
    "ok # qp {} ...",                     // qmail (the qmail-queue process, as it logs it)
    "Message Queued ({})",                // Haraka
    "Ok {#}",                             // Amazon SES
};

bool has_digit(std::string_view word) {
    return std::any_of(word.begin(), word.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

std::vector<std::string_view> words_of(std::string_view text) {
    std::vector<std::string_view> words;
    while (!text.empty()) {
        const auto start = text.find_first_not_of(' ');
        if (start == std::string_view::npos) break;
        text.remove_prefix(start);
        const auto end = std::min(text.find(' '), text.size());
        words.push_back(text.substr(0, end));
        text.remove_prefix(end);
    }
    return words;
}

bool matches_word(std::string_view pattern, std::string_view word,
                  std::optional<std::string_view>& id) {
    if (pattern == "*") return true;
    if (pattern == "#") {
        return std::all_of(word.begin(), word.end(),
                           [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
    }
    for (const std::string_view hole : {std::string_view("{}"), std::string_view("{#}")}) {
        const auto at = pattern.find(hole);
        if (at == std::string_view::npos) continue;
        const auto before = pattern.substr(0, at);
        const auto after = pattern.substr(at + hole.size());
        if (word.size() <= before.size() + after.size() ||
            !iequals(word.substr(0, before.size()), before) ||
            !iequals(word.substr(word.size() - after.size()), after)) {
            return false;
        }
        const auto inside = word.substr(before.size(), word.size() - before.size() - after.size());
        if (hole == "{#}" && !has_digit(inside)) return false;
        id = inside;
        return true;
    }
    return iequals(pattern, word);
}

bool matches(std::span<const std::string_view> form, std::span<const std::string_view> words,
             std::optional<std::string_view>& id) {
    if (form.empty()) return words.empty();
    if (form.front() == "...") {
        for (std::size_t skipped = 0; skipped <= words.size(); ++skipped) {
            if (matches(form.subspan(1), words.subspan(skipped), id)) return true;
        }
        return false;
    }
    return !words.empty() && matches_word(form.front(), words.front(), id) &&
           matches(form.subspan(1), words.subspan(1), id);
}

}  // namespace

std::optional<std::string> queue_id_from_reply(std::string_view text) {
    std::vector<std::string_view> words = words_of(text);
    if (!words.empty() && parse_enhanced_status(words.front(), 2)) words.erase(words.begin());
    for (const std::string_view form : kForms) {
        std::optional<std::string_view> id;
        if (matches(words_of(form), words, id) && id) return std::string(*id);
    }
    return std::nullopt;
}

}  // namespace mailcanary::smtp
