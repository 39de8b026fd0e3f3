// IMAP: the response reader alone, and the client fed the input as the server's words, through
// login and a few commands (IDLE included).
#include <string>
#include <vector>

#include "fuzz/entries.hpp"
#include "fuzz/properties.hpp"
#include "protocols/imap_dialog.hpp"
#include "protocols/imap_response.hpp"

namespace mailcanary::fuzz {
namespace {

// What a response says, flattened for comparison (values nest at most 16 deep).
void flatten(const imap::Value& value, std::string& out) {
    out += static_cast<char>('0' + static_cast<int>(value.kind));
    out += value.text;
    out += '(';
    for (const auto& item : value.items) flatten(item, out);
    out += ')';
}

std::string flatten(const imap::Response& response) {
    std::string out = std::to_string(static_cast<int>(response.kind)) + '\n' + response.tag + '\n' +
                      (response.number ? std::to_string(*response.number) : "-") + '\n' +
                      response.name + '\n' + response.code + '\n' + response.text + '\n' +
                      response.line + '\n';
    for (const auto& value : response.data) flatten(value, out);
    return out;
}

struct Read {
    std::vector<std::string> responses;
    std::string error;
};

// Feeds `input` in pieces of `piece` bytes (0: at once), taking every response as it completes.
Read read_responses(std::string_view input, std::size_t piece) {
    imap::ResponseReader reader;
    Read read;
    if (piece == 0) piece = input.size() + 1;
    for (std::size_t at = 0; at < input.size() && read.error.empty(); at += piece) {
        reader.feed(input.substr(at, piece));
        while (auto response = reader.next()) {
            require(response->kind != imap::Response::Kind::tagged || !response->tag.empty(),
                    "a tagged response has a tag");
            read.responses.push_back(flatten(*response));
        }
        read.error = reader.error();
    }
    return read;
}

// The first byte chooses the login: TLS mode, password or token, plaintext allowed.
imap::ClientOptions client_options(unsigned char choice) {
    imap::ClientOptions options;
    options.tls = static_cast<TlsMode>(choice % 3);
    options.allow_plaintext = (choice & 0x04) != 0;
    options.credentials.username = std::string(kUsername);
    options.credentials.secret = std::string(kSecret);
    options.credentials.secret_is_token = (choice & 0x08) != 0;
    options.credentials.host = "imap.example.test";
    options.credentials.port = 993;
    return options;
}

}  // namespace

void imap_response(std::string_view input) {
    const Read whole = read_responses(input, 0);
    const std::size_t piece = input.empty() ? 1 : static_cast<unsigned char>(input[0]) % 7 + 1;
    const Read split = read_responses(input, piece);
    require(whole.responses == split.responses && whole.error == split.error,
            "responses do not depend on how the bytes are split");
}

void imap_dialog(std::string_view input) {
    if (input.empty()) return;
    imap::ClientOptions options = client_options(static_cast<unsigned char>(input[0]));
    const auto server_says = chunks(input.substr(1));
    Transcript transcript;
    imap::Client client(std::move(options), transcript);

    // What the probes ask once logged in, in turn; an empty one stands for IDLE.
    const std::string_view commands[] = {
        "SELECT INBOX", "", "UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token)])",
        "UID SEARCH ALL", "LOGOUT"};
    std::size_t next_command = 0;
    std::size_t next_chunk = 0;
    auto server_speaks = [&] {
        return next_chunk < server_says.size() ? client.on_bytes(server_says[next_chunk++])
                                               : client.on_closed();
    };
    int steps = 0;
    for (auto action = client.start(); action.kind != imap::Action::Kind::failed; ++steps) {
        require(steps < kMaxSteps, "the dialog ends");
        using Kind = imap::Action::Kind;
        if (action.kind == Kind::read) {
            action = server_speaks();
        } else if (action.kind == Kind::write) {
            require(action.bytes.ends_with("\r\n"), "every write ends in CRLF");
            action = client.on_written();
        } else if (action.kind == Kind::start_tls) {
            action = client.on_tls_established();
        } else if (action.kind == Kind::idling) {
            // One read while idling, then DONE, as when the IDLE's time is up.
            action = server_speaks();
            if (action.kind == Kind::idling) action = client.stop_idling();
        } else {  // ready or completed
            require(client.ready(), "ready and completed leave the client ready");
            require(action.kind != Kind::completed ||
                        client.completion().untagged.size() <= imap::Client::kMaxUntaggedPerCommand,
                    "a command collects bounded data");
            if (next_command == std::size(commands)) break;
            const std::string_view command = commands[next_command++];
            action = command.empty() ? client.idle() : client.command(command);
        }
        if (action.kind == Kind::failed) {
            require(client.failure().has_value(), "a failed session says why");
        }
    }
    require(!reveals_secret(transcript), "the secret never reaches the transcript");
}

}  // namespace mailcanary::fuzz
