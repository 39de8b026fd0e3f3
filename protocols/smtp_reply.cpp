#include "protocols/smtp_reply.hpp"

#include <charconv>

namespace mailcanary::smtp {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses a number of 1 to 3 digits at the front of text; advances text past it.
std::optional<int> take_number(std::string_view& text) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const auto length = static_cast<std::size_t>(end - text.data());
    if (ec != std::errc{} || length == 0 || length > 3) return std::nullopt;
    text.remove_prefix(length);
    return value;
}

}  // namespace

std::string EnhancedStatus::to_string() const {
    return std::to_string(klass) + "." + std::to_string(subject) + "." + std::to_string(detail);
}

std::string Reply::summary() const {
    std::string text = std::to_string(code);
    if (!lines.empty() && !lines.front().empty()) {
        text += ' ';
        text += lines.front();
    }
    return text;
}

std::optional<EnhancedStatus> parse_enhanced_status(std::string_view text, int reply_class) {
    EnhancedStatus status;
    auto klass = take_number(text);
    if (!klass || *klass != reply_class || text.empty() || text.front() != '.') return std::nullopt;
    text.remove_prefix(1);
    auto subject = take_number(text);
    if (!subject || text.empty() || text.front() != '.') return std::nullopt;
    text.remove_prefix(1);
    auto detail = take_number(text);
    if (!detail || (!text.empty() && text.front() != ' ')) return std::nullopt;
    status.klass = *klass;
    status.subject = *subject;
    status.detail = *detail;
    return status;
}

void ReplyParser::feed(std::string_view bytes) {
    // Drop what was parsed already, so the buffer never holds more than one reply in progress.
    buffer_.erase(0, consumed_);
    scan_from_ -= consumed_;
    consumed_ = 0;
    buffer_.append(bytes);
}

ReplyParser::Status ReplyParser::fail(std::string message) {
    error_ = std::move(message);
    return Status::error;
}

ReplyParser::Status ReplyParser::next() {
    if (!error_.empty()) return Status::error;
    for (;;) {
        const auto lf = buffer_.find('\n', scan_from_);
        if (lf == std::string::npos) {
            scan_from_ = buffer_.size();
            if (buffer_.size() - consumed_ > limits_.max_line_length) {
                return fail("reply line longer than " + std::to_string(limits_.max_line_length) +
                            " bytes");
            }
            return Status::need_more;
        }
        std::string_view line(buffer_.data() + consumed_, lf - consumed_);
        consumed_ = scan_from_ = lf + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > limits_.max_line_length) {
            return fail("reply line longer than " + std::to_string(limits_.max_line_length) +
                        " bytes");
        }

        // "NNN", "NNN text" or "NNN-text"; the first digit is 2 to 5 (RFC 5321 4.2.1).
        if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
            line[0] < '2' || line[0] > '5' ||
            (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
            return fail("malformed reply line: \"" + std::string(line.substr(0, 80)) + "\"");
        }
        const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (!partial_.lines.empty() && code != partial_.code) {
            return fail("reply code changed within a multi-line reply (" +
                        std::to_string(partial_.code) + " then " + std::to_string(code) + ")");
        }
        if (partial_.lines.size() == limits_.max_lines) {
            return fail("multi-line reply longer than " + std::to_string(limits_.max_lines) +
                        " lines");
        }
        partial_.code = code;
        partial_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});

        const bool last_line = line.size() == 3 || line[3] == ' ';
        if (last_line) {
            partial_.enhanced = parse_enhanced_status(partial_.lines.front(), code / 100);
            reply_ = std::move(partial_);
            partial_ = Reply{};
            return Status::reply;
        }
    }
}

}  // namespace mailcanary::smtp
