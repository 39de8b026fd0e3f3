// SASL client mechanisms for SMTP AUTH (RFC 4954): the exact bytes each one sends. No I/O.
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
// CRAM-MD5, PLAIN, LOGIN for a password; OAUTHBEARER, XOAUTH2 for a token.
std::optional<Mechanism> choose(std::span<const std::string> offered, bool have_token);
// The mechanism words advertised by an EHLO "AUTH ..." capability line, upper-cased.
std::vector<std::string> offered_mechanisms(std::span<const std::string> capabilities);

}  // namespace mailcanary::sasl
