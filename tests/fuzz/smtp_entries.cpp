// SMTP: the reply parser alone, and the client dialog fed the input as the server's words.
#include <string>
#include <vector>

#include "fuzz/entries.hpp"
#include "fuzz/properties.hpp"
#include "protocols/smtp_dialog.hpp"
#include "protocols/smtp_reply.hpp"

namespace mailcanary::fuzz {
namespace {

struct Parsed {
    std::vector<smtp::Reply> replies;
    bool failed = false;
};

// Feeds `input` in pieces of `piece` bytes (0: at once), taking every reply as it completes.
Parsed parse_replies(std::string_view input, std::size_t piece) {
    const smtp::ReplyParser::Limits limits;
    smtp::ReplyParser parser(limits);
    Parsed parsed;
    if (piece == 0) piece = input.size() + 1;
    for (std::size_t at = 0; at < input.size() && !parsed.failed; at += piece) {
        parser.feed(input.substr(at, piece));
        for (auto status = parser.next(); status != smtp::ReplyParser::Status::need_more;
             status = parser.next()) {
            if (status == smtp::ReplyParser::Status::error) {
                require(!parser.error().empty(), "a parse error says what was wrong");
                parsed.failed = true;
                break;
            }
            const smtp::Reply& reply = parser.reply();
            require(reply.code >= 200 && reply.code <= 599, "a reply code is 2xx to 5xx");
            require(!reply.lines.empty() && reply.lines.size() <= limits.max_lines,
                    "a reply has 1 to max_lines lines");
            parsed.replies.push_back(reply);
        }
        // What waits for its line end is one line at most: memory stays bounded.
        require(parsed.failed || parser.buffered() <= limits.max_line_length,
                "no more than one line is buffered");
    }
    return parsed;
}

bool same_replies(const Parsed& a, const Parsed& b) {
    if (a.failed != b.failed || a.replies.size() != b.replies.size()) return false;
    for (std::size_t i = 0; i < a.replies.size(); ++i) {
        if (a.replies[i].code != b.replies[i].code || a.replies[i].lines != b.replies[i].lines ||
            a.replies[i].enhanced != b.replies[i].enhanced) {
            return false;
        }
    }
    return true;
}

// The first byte chooses the dialog: TLS mode, login, a transaction (or just RCPT).
smtp::DialogOptions dialog_options(unsigned char choice) {
    smtp::DialogOptions options;
    options.tls = static_cast<TlsMode>(choice % 3);
    options.helo = "probe.example.test";
    if (choice & 0x04) {
        options.auth = smtp::AuthRequest{.mechanism = std::nullopt,
                                         .username = std::string(kUsername),
                                         .secret = std::string(kSecret),
                                         .secret_is_token = (choice & 0x40) != 0,
                                         .allow_plaintext = (choice & 0x08) != 0,
                                         .host = "mx.example.test",
                                         .port = 587};
    }
    if (choice & 0x10) {
        options.transaction =
            smtp::TransactionRequest{.from = "probe@example.test",
                                     .to = {"a@example.test", "b@example.test"},
                                     .message = "Subject: probe\r\n\r\nbody\r\n.\r\n",
                                     .rcpt_only = (choice & 0x20) != 0};
    }
    return options;
}

}  // namespace

void smtp_reply(std::string_view input) {
    const Parsed whole = parse_replies(input, 0);
    // How the bytes arrive does not change what they say.
    const std::size_t piece = input.empty() ? 1 : static_cast<unsigned char>(input[0]) % 7 + 1;
    require(same_replies(whole, parse_replies(input, piece)),
            "replies do not depend on how the bytes are split");
}

void smtp_dialog(std::string_view input) {
    if (input.empty()) return;
    const auto options = dialog_options(static_cast<unsigned char>(input[0]));
    const bool sends_message = options.transaction && !options.transaction->rcpt_only;
    const auto server_says = chunks(input.substr(1));
    Transcript transcript;
    smtp::Dialog dialog(options, transcript);

    std::size_t next_chunk = 0;
    int steps = 0;
    for (auto action = dialog.start(); action.kind != smtp::Action::Kind::done; ++steps) {
        require(steps < kMaxSteps, "the dialog ends");
        switch (action.kind) {
            case smtp::Action::Kind::read:
                action = next_chunk < server_says.size()
                             ? dialog.on_bytes(server_says[next_chunk++])
                             : dialog.on_closed();
                break;
            case smtp::Action::Kind::buffered:
                action = dialog.on_bytes({});
                break;
            case smtp::Action::Kind::write:
                require(action.bytes.ends_with("\r\n"), "every write ends in CRLF");
                action = dialog.on_written();
                break;
            case smtp::Action::Kind::start_tls:
                action = dialog.on_tls_established();
                break;
            case smtp::Action::Kind::done:
                break;
        }
    }
    require(dialog.finished(), "done means finished");
    if (dialog.failure()) {
        require(!dialog.failure_detail().empty(), "a failure has a detail");
    } else if (sends_message) {
        require(dialog.message_accepted(), "a dialog without failure delivered its message");
    }
    require(!reveals_secret(transcript), "the secret never reaches the transcript");
}

}  // namespace mailcanary::fuzz
