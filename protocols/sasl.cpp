#include "protocols/sasl.hpp"
#include "common/text.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace mailcanary::sasl {
namespace {

Exchange::Answer with_credential(std::string response) {
    Exchange::Answer answer;
    answer.response = std::move(response);
    answer.secret = true;
    return answer;
}

Exchange::Answer unanswerable(std::string error) {
    Exchange::Answer answer;
    answer.error = std::move(error);
    return answer;
}

}  // namespace

std::string_view name(Mechanism mechanism) {
    switch (mechanism) {
        case Mechanism::plain:
            return "PLAIN";
        case Mechanism::login:
            return "LOGIN";
        case Mechanism::cram_md5:
            return "CRAM-MD5";
        case Mechanism::xoauth2:
            return "XOAUTH2";
        case Mechanism::oauthbearer:
            return "OAUTHBEARER";
    }
    return "PLAIN";
}

bool needs_token(Mechanism mechanism) {
    return mechanism == Mechanism::xoauth2 || mechanism == Mechanism::oauthbearer;
}

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        reinterpret_cast<const unsigned char*>(bytes.data()),
                                        static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out(3 * text.size() / 4, '\0');
    const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        reinterpret_cast<const unsigned char*>(text.data()),
                                        static_cast<int>(text.size()));
    if (written < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as data: drop one byte per '='.
    const auto padding = static_cast<std::size_t>(
        std::count(text.end() - std::min<std::size_t>(2, text.size()), text.end(), '='));
    out.resize(static_cast<std::size_t>(written) - padding);
    return out;
}

std::string plain_response(std::string_view username, std::string_view password) {
    std::string message;
    message += '\0';
    message += username;
    message += '\0';
    message += password;
    return base64_encode(message);
}

std::string cram_md5_response(std::string_view username, std::string_view password,
                              std::string_view challenge) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_md5(), password.data(), static_cast<int>(password.size()),
         reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size(), digest.data(),
         &length);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string message(username);
    message += ' ';
    for (unsigned int i = 0; i < length; ++i) {
        message += kHex[digest[i] >> 4];
        message += kHex[digest[i] & 15];
    }
    return base64_encode(message);
}

std::string xoauth2_response(std::string_view username, std::string_view token) {
    std::string message = "user=";
    message += username;
    message +=
        "\x01"
        "auth=Bearer ";
    message += token;
    message += "\x01\x01";
    return base64_encode(message);
}

std::string oauthbearer_response(std::string_view username, std::string_view host, unsigned port,
                                 std::string_view token) {
    std::string message = "n,a=";
    // RFC 5801: ',' and '=' in the authzid are escaped as =2C and =3D.
    for (const char c : username) {
        if (c == ',')
            message += "=2C";
        else if (c == '=')
            message += "=3D";
        else
            message += c;
    }
    message +=
        ",\x01"
        "host=";
    message += host;
    message +=
        "\x01"
        "port=" +
        std::to_string(port) +
        "\x01"
        "auth=Bearer ";
    message += token;
    message += "\x01\x01";
    return base64_encode(message);
}

std::vector<std::string> offered_mechanisms(std::span<const std::string> capabilities) {
    std::vector<std::string> words;
    for (const auto& line : capabilities) {
        // "AUTH PLAIN LOGIN"; some old servers also say "AUTH=PLAIN LOGIN".
        const std::string upper_line = to_upper(line);
        if (!upper_line.starts_with("AUTH ") && !upper_line.starts_with("AUTH=")) continue;
        std::size_t start = 5;
        while (start < upper_line.size()) {
            const auto end = std::min(upper_line.find(' ', start), upper_line.size());
            if (end > start) words.push_back(upper_line.substr(start, end - start));
            start = end + 1;
        }
    }
    return words;
}

std::optional<Mechanism> choose(std::span<const std::string> offered, bool have_token,
                                std::optional<Mechanism> wanted) {
    const auto is_offered = [&](Mechanism mechanism) {
        return std::find(offered.begin(), offered.end(), name(mechanism)) != offered.end();
    };
    if (wanted) return is_offered(*wanted) ? wanted : std::nullopt;
    static constexpr std::array kForPassword{Mechanism::cram_md5, Mechanism::plain,
                                             Mechanism::login};
    static constexpr std::array kForToken{Mechanism::oauthbearer, Mechanism::xoauth2};
    const std::span<const Mechanism> preference = have_token
                                                      ? std::span<const Mechanism>(kForToken)
                                                      : std::span<const Mechanism>(kForPassword);
    for (const Mechanism mechanism : preference) {
        if (is_offered(mechanism)) return mechanism;
    }
    return std::nullopt;
}

std::string describe_no_choice(std::span<const std::string> offered, bool have_token,
                               std::optional<Mechanism> wanted) {
    if (offered.empty()) return "server offers no SASL mechanism";
    std::string offered_text;
    for (const auto& word : offered) offered_text += " " + word;
    const std::string looked_for = wanted       ? std::string(name(*wanted))
                                   : have_token ? "a token mechanism"
                                                : "a password mechanism";
    return "server offers AUTH" + offered_text + ", not " + looked_for;
}

Exchange::Exchange(Mechanism mechanism, Credential credential)
    : mechanism_(mechanism), credential_(std::move(credential)) {
    switch (mechanism_) {
        case Mechanism::plain:
            initial_response_ = plain_response(credential_.username, credential_.secret);
            break;
        case Mechanism::xoauth2:
            initial_response_ = xoauth2_response(credential_.username, credential_.secret);
            break;
        case Mechanism::oauthbearer:
            initial_response_ = oauthbearer_response(credential_.username, credential_.host,
                                                     credential_.port, credential_.secret);
            break;
        case Mechanism::login:
        case Mechanism::cram_md5:
            break;  // the server speaks first
    }
}

std::optional<std::string> Exchange::initial_response(bool command_can_carry_it) {
    if (!command_can_carry_it) return std::nullopt;
    return std::exchange(initial_response_, std::nullopt);
}

Exchange::Answer Exchange::answer(std::string_view challenge) {
    if (initial_response_) {
        return with_credential(*std::exchange(initial_response_, std::nullopt));
    }
    const int step = challenges_answered_++;
    switch (mechanism_) {
        case Mechanism::login:
            // The challenges ask for the user name, then the password.
            if (step == 0) return with_credential(base64_encode(credential_.username));
            if (step == 1) return with_credential(base64_encode(credential_.secret));
            break;
        case Mechanism::cram_md5:
            if (step == 0) {
                const auto decoded = base64_decode(challenge);
                if (!decoded) return unanswerable("CRAM-MD5 challenge is not base64");
                return with_credential(
                    cram_md5_response(credential_.username, credential_.secret, *decoded));
            }
            break;
        case Mechanism::xoauth2:
        case Mechanism::oauthbearer:
            // The token was refused: the challenge carries the error (base64 JSON), and the
            // answer (empty for XOAUTH2, ^A for OAUTHBEARER) asks for the final failure.
            if (step == 0) {
                Answer answer;
                answer.response = mechanism_ == Mechanism::xoauth2 ? "" : base64_encode("\x01");
                answer.server_error = base64_decode(challenge).value_or(std::string(challenge));
                return answer;
            }
            break;
        case Mechanism::plain:
            break;
    }
    return unanswerable("unexpected SASL challenge");
}

}  // namespace mailcanary::sasl
