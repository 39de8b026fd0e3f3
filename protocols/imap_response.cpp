#include "protocols/imap_response.hpp"

#include "common/text.hpp"
#include "protocols/imap_utf7.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace mailcanary::imap {
namespace {

// A line of the response (without its line end) and the literal that follows it, if the line
// announced one with {n}.
struct Segment {
    std::string_view line;
    std::optional<std::string_view> literal;
};

// Where a line ends in "{n}" or "{n+}": n, or nothing.
std::optional<std::size_t> literal_size(std::string_view line) {
    if (line.empty() || line.back() != '}') return std::nullopt;
    const auto open = line.rfind('{');
    if (open == std::string_view::npos) return std::nullopt;
    std::string_view digits = line.substr(open + 1, line.size() - open - 2);
    if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
    if (digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    std::size_t size = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
    // Too large to represent is too large to accept: the caller's limit rejects it.
    return ec == std::errc() ? size : SIZE_MAX;
}

// Reads values from the segments of one response. Malformed input ends the value early; the
// caller sees what could be read, never out-of-range access.
class Tokenizer {
  public:
    explicit Tokenizer(const std::vector<Segment>& segments) : segments_(segments) {}

    void skip_spaces() {
        while (segment_ < segments_.size() && position_ < line().size() &&
               line()[position_] == ' ') {
            ++position_;
        }
    }

    // Up to the next space (or the end of the line): a tag, a number, a name.
    std::string_view word() {
        skip_spaces();
        const std::string_view text = current_line();
        const auto start = std::min(position_, text.size());
        auto end = text.find(' ', start);
        if (end == std::string_view::npos) end = text.size();
        position_ = end;
        return text.substr(start, end - start);
    }

    // The rest of the current line, after one space.
    std::string_view rest_of_line() {
        skip_spaces();
        const std::string_view text = current_line();
        const auto start = std::min(position_, text.size());
        position_ = text.size();
        return text.substr(start);
    }

    std::optional<Value> value(int depth = 0) {
        ++values_read_;
        skip_spaces();
        if (segment_ >= segments_.size()) return std::nullopt;
        const std::string_view text = line();
        if (position_ >= text.size()) {
            return std::nullopt;
        }
        const char c = text[position_];
        if (c == '(') return list(depth);
        if (c == '"') return quoted_string();
        if (c == '{') return literal();
        if (c == ')') return std::nullopt;
        return atom();
    }

    std::vector<Value> values() {
        std::vector<Value> out;
        while (auto item = value()) out.push_back(std::move(*item));
        return out;
    }

    // How many values were read (or tried), for what the response takes in memory.
    std::size_t values_read() const { return values_read_; }

  private:
    static constexpr int kMaxDepth = 16;

    std::string_view line() const { return segments_[segment_].line; }
    std::string_view current_line() const {
        return segment_ < segments_.size() ? line() : std::string_view();
    }

    std::optional<Value> list(int depth) {
        if (depth >= kMaxDepth) return std::nullopt;
        ++position_;  // (
        Value result;
        result.kind = Value::Kind::list;
        while (true) {
            skip_spaces();
            if (segment_ >= segments_.size() || position_ >= line().size()) break;
            if (line()[position_] == ')') {
                ++position_;
                break;
            }
            auto item = value(depth + 1);
            if (!item) break;
            result.items.push_back(std::move(*item));
        }
        return result;
    }

    std::optional<Value> quoted_string() {
        const std::string_view text = line();
        Value result;
        result.kind = Value::Kind::string;
        ++position_;  // opening quote
        while (position_ < text.size() && text[position_] != '"') {
            if (text[position_] == '\\' && position_ + 1 < text.size()) ++position_;
            result.text += text[position_++];
        }
        if (position_ < text.size()) ++position_;  // closing quote
        return result;
    }

    std::optional<Value> literal() {
        const Segment& segment = segments_[segment_];
        if (!segment.literal) return std::nullopt;  // "{" inside a line is not a literal
        Value result;
        result.kind = Value::Kind::string;
        result.text = std::string(*segment.literal);
        ++segment_;
        position_ = 0;
        return result;
    }

    std::optional<Value> atom() {
        const std::string_view text = line();
        const auto start = position_;
        int brackets = 0;
        while (position_ < text.size()) {
            const char c = text[position_];
            if (c == '[') ++brackets;
            if (c == ']' && brackets > 0) --brackets;
            if (brackets == 0 && (c == ' ' || c == '(' || c == ')')) {
                // "BODY[...]<0>" and "BODY[HEADER.FIELDS (A B)]" stay one atom; "(" ends one.
                break;
            }
            ++position_;
        }
        Value result;
        result.text = std::string(text.substr(start, position_ - start));
        if (to_upper(result.text) == "NIL") result.kind = Value::Kind::nil;
        return result;
    }

    const std::vector<Segment>& segments_;
    std::size_t segment_ = 0;
    std::size_t position_ = 0;
    std::size_t values_read_ = 0;
};

bool is_status_name(std::string_view name) {
    return name == "OK" || name == "NO" || name == "BAD" || name == "BYE" || name == "PREAUTH";
}

// "[CODE args] text" or "text".
void read_response_text(std::string_view rest, Response& response) {
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close != std::string_view::npos) {
            response.code = std::string(rest.substr(1, close - 1));
            rest.remove_prefix(close + 1);
            if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        }
    }
    response.text = std::string(rest);
}

// The response, and in `values` how many values it holds.
Response parse(const std::vector<Segment>& segments, std::size_t& values) {
    Tokenizer tokens(segments);
    Response response;
    response.line = std::string(segments.front().line);
    const std::string_view first = tokens.word();
    if (first == "+") {
        response.kind = Response::Kind::continuation;
        response.text = std::string(tokens.rest_of_line());
        return response;
    }
    if (first == "*") {
        response.kind = Response::Kind::untagged;
    } else {
        response.kind = Response::Kind::tagged;
        response.tag = std::string(first);
    }
    std::string_view name = tokens.word();
    if (response.kind == Response::Kind::untagged && !name.empty() &&
        std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        Value number;
        number.text = std::string(name);
        response.number = number.number();
        name = tokens.word();
    }
    response.name = to_upper(name);
    if (response.is_status()) {
        read_response_text(tokens.rest_of_line(), response);
    } else {
        response.data = tokens.values();
    }
    values = tokens.values_read();
    return response;
}

}  // namespace

bool Value::is_atom(std::string_view upper_case) const {
    return kind == Kind::atom && to_upper(text) == upper_case;
}

std::optional<std::uint32_t> Value::number() const {
    if (kind != Kind::atom || text.empty()) return std::nullopt;
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

bool Response::is_status() const { return kind != Kind::continuation && is_status_name(name); }

void ResponseReader::feed(std::string_view bytes) {
    if (!error_.empty()) return;
    if (consumed_ > 0 && consumed_ == buffer_.size()) {
        buffer_.clear();
        consumed_ = 0;
    }
    buffer_.append(bytes);
}

std::optional<Response> ResponseReader::next() {
    if (!error_.empty()) return std::nullopt;
    std::vector<Segment> segments;
    std::size_t position = consumed_;
    while (true) {
        const auto newline = buffer_.find('\n', position);
        if (newline == std::string::npos) {
            if (buffer_.size() - position > kMaxLineBytes) {
                error_ = "a response line longer than " + std::to_string(kMaxLineBytes) + " bytes";
            } else {
                over_cap();
            }
            return std::nullopt;
        }
        if (newline - position > kMaxLineBytes) {
            error_ = "a response line longer than " + std::to_string(kMaxLineBytes) + " bytes";
            return std::nullopt;
        }
        std::string_view line(buffer_.data() + position, newline - position);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        position = newline + 1;
        const auto literal = literal_size(line);
        if (!literal) {
            segments.push_back({line, std::nullopt});
            break;
        }
        if (*literal > kMaxLiteralBytes) {
            error_ = "a literal of " + std::to_string(*literal) + " bytes";
            return std::nullopt;
        }
        if (buffer_.size() - position < *literal) {  // still arriving
            over_cap();
            return std::nullopt;
        }
        segments.push_back({line, std::string_view(buffer_.data() + position, *literal)});
        position += *literal;
        if (position - consumed_ > kMaxResponseBytes) {
            error_ = "a response larger than " + std::to_string(kMaxResponseBytes) + " bytes";
            return std::nullopt;
        }
    }
    // An empty line (or spaces) is neither data, a continuation nor a completion: without this it
    // would pass for a completion with an empty tag.
    if (segments.front().line.find_first_not_of(' ') == std::string_view::npos) {
        error_ = "a response line without a tag";
        return std::nullopt;
    }
    std::size_t values = 0;
    Response response = parse(segments, values);
    const std::size_t footprint =
        (position - consumed_) + sizeof(Response) + values * sizeof(Value);
    consumed_ = position;
    if (over_cap(footprint)) return std::nullopt;
    handed_out_ += footprint;
    // Keep the buffer small: drop what has been parsed once it is a good share of it.
    if (consumed_ > std::size_t{64} * 1024 && consumed_ * 2 > buffer_.size()) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    return response;
}

bool ResponseReader::over_cap(std::size_t more) {
    if (held() + more <= kMaxHeldBytes) return false;
    error_ = "more than " + std::to_string(kMaxHeldBytes) +
             " bytes of responses to one command (an untagged flood)";
    // Nothing more is read from the stream: what it left unparsed is let go of now.
    buffer_ = std::string();
    consumed_ = 0;
    return true;
}

std::optional<std::string> quoted(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte == '\r' || byte == '\n' || byte == '\0' || byte >= 0x80) return std::nullopt;
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

std::string mailbox_argument(std::string_view name) {
    // Modified UTF-7 is printable ASCII: quoting cannot fail for it.
    const auto encoded = encode_mailbox_name(name);
    return encoded ? *quoted(*encoded) : std::string("\"\"");
}

}  // namespace mailcanary::imap
