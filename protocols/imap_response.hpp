// IMAP server responses (RFC 9051 7, RFC 3501 7) cut out of the bytes a server sends: tagged
// completions, untagged data and continuation requests, literals included. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary::imap {

// One piece of response data: an atom (numbers are atoms), a string (quoted or literal), NIL, or
// a parenthesised list. An atom keeps a bracketed section whole: "BODY[HEADER.FIELDS (X-A)]".
struct Value {
    enum class Kind { atom, string, nil, list };
    Kind kind = Kind::atom;
    std::string text;  // atom or string contents
    std::vector<Value> items;

    bool is_atom(std::string_view upper_case) const;  // case-insensitive
    std::optional<std::uint32_t> number() const;      // an atom of digits that fits 32 bits
};

struct Response {
    enum class Kind { untagged, tagged, continuation };
    Kind kind = Kind::untagged;
    std::string tag;                      // tagged only
    std::optional<std::uint32_t> number;  // "* 3 EXISTS": 3
    // Upper case: OK NO BAD BYE PREAUTH for status responses, else the data's name (CAPABILITY,
    // EXISTS, EXPUNGE, FETCH, SEARCH, LIST, FLAGS, ...).
    std::string name;
    std::string code;         // a status response's [resp-text-code], without the brackets
    std::string text;         // a status response's or continuation's human-readable text
    std::vector<Value> data;  // the rest of a data response
    std::string line;         // the first line as received, for transcripts

    bool is_status() const;
};

// Cuts a byte stream into responses. Bounded: a line, literal or response beyond its limit, and
// more held at once than kMaxHeldBytes, is a protocol error, so a hostile or broken server
// cannot grow the agent's memory. A literal is refused when announced, before its bytes come.
class ResponseReader {
  public:
    static constexpr std::size_t kMaxLineBytes = std::size_t{64} * 1024;
    static constexpr std::size_t kMaxLiteralBytes = std::size_t{1024} * 1024;
    static constexpr std::size_t kMaxResponseBytes = std::size_t{4} * 1024 * 1024;
    // What one session may hold of the server's words at once: the responses handed out since
    // the last release() (a command's untagged data, kept until it completes) and the bytes not
    // yet parsed. A response counts its bytes and the size of its parsed values, so a flood of
    // tiny items counts for what it takes. The agent's own reads add at most 16 KiB.
    static constexpr std::size_t kMaxHeldBytes = std::size_t{16} * 1024 * 1024;

    void feed(std::string_view bytes);
    // The next complete response; empty when more bytes are needed or after an error.
    std::optional<Response> next();
    // Set once the stream could not be parsed; nothing more is read from it.
    const std::string& error() const { return error_; }
    bool has_partial() const { return consumed_ < buffer_.size(); }
    // What counts against kMaxHeldBytes now; at most that whenever next() returned.
    std::size_t held() const { return handed_out_ + (buffer_.size() - consumed_); }
    // The responses handed out so far are let go of (their command completed): they no
    // longer count.
    void release() { handed_out_ = 0; }

  private:
    // Sets the error when more than kMaxHeldBytes would be held with `more` bytes added; true
    // then, and the unparsed bytes are dropped.
    bool over_cap(std::size_t more = 0);

    std::string buffer_;
    std::size_t consumed_ = 0;
    std::size_t handed_out_ = 0;
    std::string error_;
};

// The quoted form of a string argument (RFC 9051 4.3), or empty when it cannot be quoted (CR,
// LF, NUL or 8-bit bytes): such a value needs a literal.
std::optional<std::string> quoted(std::string_view text);
// A mailbox name (UTF-8, as the configuration and decoded LIST responses have it) as a command
// argument: modified UTF-7 (RFC 3501 5.1.3), quoted. Quoting alone would refuse the 8-bit bytes
// of "Корзина". A name that is not UTF-8 becomes "", which no server takes for a mailbox.
std::string mailbox_argument(std::string_view name);

}  // namespace mailcanary::imap
