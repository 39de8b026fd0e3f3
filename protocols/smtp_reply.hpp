// SMTP replies (RFC 5321 4.2) and an incremental parser for them. No I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary::smtp {

// RFC 3463 enhanced status code, e.g. 5.7.1.
struct EnhancedStatus {
    int klass = 0;
    int subject = 0;
    int detail = 0;

    std::string to_string() const;
    bool operator==(const EnhancedStatus&) const = default;
};

struct Reply {
    int code = 0;
    std::optional<EnhancedStatus> enhanced;  // taken from the first line, when present
    std::vector<std::string> lines;          // text after "NNN-" / "NNN ", without CRLF

    int klass() const { return code / 100; }
    // "250 first line" for logs and error messages.
    std::string summary() const;
};

std::optional<EnhancedStatus> parse_enhanced_status(std::string_view text, int reply_class);

// Consumes the bytes a server sends and yields whole replies. Memory is bounded by the limits,
// so an endless line or an endless multi-line reply is an error, not unbounded growth.
class ReplyParser {
  public:
    struct Limits {
        // RFC 5321 allows 512 octets per reply line; real servers stay well below 1000.
        std::size_t max_line_length = 2048;
        // An EHLO reply with every extension known today has fewer than 30 lines.
        std::size_t max_lines = 128;
    };

    enum class Status { need_more, reply, error };

    ReplyParser() = default;
    explicit ReplyParser(Limits limits) : limits_(limits) {}

    void feed(std::string_view bytes);

    // After Status::reply, reply() holds it; after Status::error, error() says what was wrong.
    Status next();
    const Reply& reply() const { return reply_; }
    const std::string& error() const { return error_; }

    // Bytes received after the last complete reply that are not yet part of a reply. Must be
    // zero when TLS starts after STARTTLS: anything else could be injected plaintext.
    std::size_t buffered() const { return buffer_.size() - consumed_; }

  private:
    Status fail(std::string message);

    Limits limits_;
    std::string buffer_;
    std::size_t consumed_ = 0;   // start of the first line not yet parsed
    std::size_t scan_from_ = 0;  // where the search for the next LF resumes
    Reply partial_;
    Reply reply_;
    std::string error_;
};

}  // namespace mailcanary::smtp
