// SASL client mechanisms (RFC 4422) for SMTP AUTH (RFC 4954) and IMAP AUTHENTICATE (RFC 9051):
// which one to use, the exact bytes each one sends, and one exchange step by step. No I/O.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary::sasl {

enum class Mechanism { plain, login, cram_md5, xoauth2, oauthbearer };

std::string_view name(Mechanism mechanism);  // as on the wire: "PLAIN", "CRAM-MD5", ...
bool needs_token(Mechanism mechanism);       // OAuth2 bearer token rather than a password

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid.
std::string plain_response(std::string_view username, std::string_view password);
// RFC 2195: username SP lowercase-hex HMAC-MD5(password, challenge).
std::string cram_md5_response(std::string_view username, std::string_view password,
                              std::string_view challenge);
// Google's and Microsoft's XOAUTH2: "user=" u ^A "auth=Bearer " token ^A ^A.
std::string xoauth2_response(std::string_view username, std::string_view token);
// RFC 7628: the GS2 header, then host, port and the bearer token.
std::string oauthbearer_response(std::string_view username, std::string_view host, unsigned port,
                                 std::string_view token);

// The strongest of `offered` (the AUTH capability's words) that the credential can use:
// CRAM-MD5, PLAIN, LOGIN for a password; OAUTHBEARER, XOAUTH2 for a token. A `wanted` mechanism
// is taken when offered, and nothing else then.
std::optional<Mechanism> choose(std::span<const std::string> offered, bool have_token,
                                std::optional<Mechanism> wanted = std::nullopt);
// Why choose() found none, for the failure's detail: "server offers AUTH PLAIN LOGIN, not
// CRAM-MD5".
std::string describe_no_choice(std::span<const std::string> offered, bool have_token,
                               std::optional<Mechanism> wanted);
// The mechanism words advertised by an EHLO "AUTH ..." capability line, or by IMAP's "AUTH=..."
// capabilities, upper-cased.
std::vector<std::string> offered_mechanisms(std::span<const std::string> capabilities);

// Who logs in: what the mechanisms' responses are made of.
struct Credential {
    std::string username;
    std::string secret;  // the password, or the OAuth2 access token
    std::string host;    // OAUTHBEARER's host and port fields
    unsigned port = 0;
};

// One SASL exchange from the client's side, as SMTP AUTH and IMAP AUTHENTICATE both run it: the
// initial response, then one answer per server challenge. The protocol wraps them (a 334 reply or
// a "+" continuation; an AUTH line or a tagged command). Challenges and responses are base64, as
// on the wire.
class Exchange {
  public:
    struct Answer {
        std::string response;  // base64, possibly empty
        bool secret = false;   // carries the credential: never shown in a transcript
        // What an OAuth2 mechanism's error challenge said (decoded when it was base64): the token
        // was refused, and the answer asks for the server's final failure (RFC 7628 3.2.3).
        std::string server_error;
        std::string error;  // set when the challenge cannot be answered: a protocol failure
    };

    Exchange(Mechanism mechanism, Credential credential);

    // The response sent with the command, when the mechanism has one (PLAIN, XOAUTH2,
    // OAUTHBEARER) and the command can carry it (SMTP AUTH; IMAP with SASL-IR, RFC 4959). Without
    // it, the server's first challenge (empty) asks for it.
    std::optional<std::string> initial_response(bool command_can_carry_it);
    Answer answer(std::string_view challenge);

  private:
    Mechanism mechanism_;
    Credential credential_;
    std::optional<std::string> initial_response_;  // until sent
    int challenges_answered_ = 0;
};

}  // namespace mailcanary::sasl
