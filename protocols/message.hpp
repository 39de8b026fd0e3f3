// The probe message (RFC 5322) as it goes on the wire. The token it carries is
// protocols/token.hpp's.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailcanary {

// What becomes of the message once it is delivered, as its body tells the reader.
enum class AfterDelivery {
    kept,     // the accept probe, or the round trip with cleanup = "keep"
    removed,  // the round trip deletes it from the folder it arrived in
    trashed,  // the round trip moves it to the trash
};

struct MessageSpec {
    std::string from;
    std::vector<std::string> to;
    std::string subject;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers, in order
    std::string token;
    std::string message_id_domain;  // right-hand side of the Message-ID
    AfterDelivery after_delivery = AfterDelivery::kept;
};

// "<run id>.mailcanary@<domain>": traceable in server logs without revealing the token.
std::string message_id(const MessageSpec& spec);
// The same, from what it is made of: known before the message is (a run awaits it by it).
std::string message_id(std::string_view token, std::string_view domain);

// The message as it goes on the wire after DATA: CRLF line ends, no line longer than 998
// octets, dot-stuffed (RFC 5321 4.5.2), ending with the terminating "CRLF.CRLF".
std::string compose_message(const MessageSpec& spec, std::chrono::system_clock::time_point now);

// RFC 5321 4.5.2: a line that starts with "." gets one more.
std::string dot_stuff(std::string_view text);

}  // namespace mailcanary
