#include "probes/transcript.hpp"

#include <cstdio>

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
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            out += escaped;
        } else {
            out += c;
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
