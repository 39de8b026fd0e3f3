#include "common/transcript.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>

namespace mailcanary {
namespace {

char direction_letter(Transcript::Direction direction) {
    switch (direction) {
        case Transcript::Direction::client:
            return 'C';
        case Transcript::Direction::server:
            return 'S';
        case Transcript::Direction::note:
            return '*';
    }
    return '?';
}

}  // namespace

std::string printable(std::string_view text) {
    const auto needs_escape = [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte >= 0x7f;
    };
    // Replies are nearly always plain ASCII: copy them whole (this was 6 % of a plain probe's
    // instructions byte by byte).
    const auto first = std::find_if(text.begin(), text.end(), needs_escape);
    std::string out(text.begin(), first);
    if (first == text.end()) return out;
    constexpr std::string_view kHex = "0123456789abcdef";
    out.reserve(text.size() + 12);
    for (auto it = first; it != text.end(); ++it) {
        if (needs_escape(*it)) {
            const auto byte = static_cast<unsigned char>(*it);
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += *it;
        }
    }
    return out;
}

void Transcript::add(Direction direction, std::string_view text, Clock::time_point at) {
    if (truncated_) return;
    if (entries_.size() + 1 >= kMaxEntries || text_bytes_ + text.size() > kMaxTextBytes) {
        truncated_ = true;
        entries_.push_back({at - started_, Direction::note, "(transcript truncated)"});
        return;
    }
    text_bytes_ += text.size();
    entries_.push_back({at - started_, direction, printable(text)});
}

std::string Transcript::to_text() const {
    std::string out;
    for (const auto& entry : entries_) {
        char prefix[48];
        const double ms = std::chrono::duration<double, std::milli>(entry.at).count();
        std::snprintf(prefix, sizeof prefix, "+%9.3fms %c: ", ms,
                      direction_letter(entry.direction));
        out += prefix;
        out += entry.text;
        out += '\n';
    }
    return out;
}

}  // namespace mailcanary
