#include "protocols/imap_utf7.hpp"

#include <cstdint>

namespace mailcanary::imap {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

bool is_printable_ascii(char32_t c) { return c >= 0x20 && c <= 0x7e; }

// The code point at `at`, advancing it; nullopt for anything that is not well-formed UTF-8
// (stray continuation bytes, overlong forms, surrogates, beyond U+10FFFF).
std::optional<char32_t> next_code_point(std::string_view text, std::size_t& at) {
    const auto lead = static_cast<unsigned char>(text[at++]);
    if (lead < 0x80) return lead;
    std::size_t more = 0;   // continuation bytes
    char32_t smallest = 0;  // below it, the form is overlong
    if ((lead & 0xe0) == 0xc0) {
        more = 1;
        smallest = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
        more = 2;
        smallest = 0x800;
    } else if ((lead & 0xf8) == 0xf0) {
        more = 3;
        smallest = 0x10000;
    } else {
        return std::nullopt;
    }
    char32_t value = lead & (0x7fu >> (more + 1));
    for (; more > 0; --more) {
        if (at >= text.size()) return std::nullopt;
        const auto next = static_cast<unsigned char>(text[at++]);
        if ((next & 0xc0) != 0x80) return std::nullopt;
        value = (value << 6) | (next & 0x3f);
    }
    if (value < smallest || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
        return std::nullopt;
    }
    return value;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xc0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xe0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (c & 0x3f));
    }
}

// "&", the UTF-16 (big-endian) of `units` in modified base64, "-".
void append_run(std::string& out, const std::u16string& units) {
    out += '&';
    std::uint32_t bits = 0;
    int count = 0;
    for (const char16_t unit : units) {
        bits = (bits << 16) | unit;
        count += 16;
        while (count >= 6) {
            count -= 6;
            out += kAlphabet[(bits >> count) & 0x3f];
        }
        bits &= (1u << count) - 1;
    }
    if (count > 0) out += kAlphabet[(bits << (6 - count)) & 0x3f];
    out += '-';
}

// The text of a run between "&" and "-", as UTF-8 appended to `out`; false when it is not one.
bool decode_run(std::string_view run, std::string& out) {
    std::uint32_t bits = 0;
    int count = 0;
    char16_t high = 0;  // a high surrogate waiting for its low half, or 0
    for (const char c : run) {
        const auto value = kAlphabet.find(c);
        if (value == std::string_view::npos) return false;
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        count += 6;
        if (count < 16) continue;
        count -= 16;
        const auto unit = static_cast<char16_t>((bits >> count) & 0xffff);
        bits &= (1u << count) - 1;
        if (unit >= 0xd800 && unit <= 0xdbff) {
            if (high != 0) return false;
            high = unit;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            if (high == 0) return false;
            append_utf8(out,
                        0x10000 + ((static_cast<char32_t>(high) - 0xd800) << 10) + (unit - 0xdc00));
            high = 0;
        } else {
            if (high != 0) return false;
            append_utf8(out, unit);
        }
    }
    // What is left over is the padding of the last character: fewer than 6 bits, all zero.
    return high == 0 && count < 6 && bits == 0;
}

}  // namespace

std::optional<std::string> encode_mailbox_name(std::string_view utf8) {
    std::string out;
    std::u16string run;
    for (std::size_t at = 0; at < utf8.size();) {
        const auto c = next_code_point(utf8, at);
        if (!c) return std::nullopt;
        if (!is_printable_ascii(*c)) {
            if (*c < 0x10000) {
                run += static_cast<char16_t>(*c);
            } else {
                run += static_cast<char16_t>(0xd800 + ((*c - 0x10000) >> 10));
                run += static_cast<char16_t>(0xdc00 + ((*c - 0x10000) & 0x3ff));
            }
            continue;
        }
        if (!run.empty()) {
            append_run(out, run);
            run.clear();
        }
        out += *c == '&' ? std::string("&-") : std::string(1, static_cast<char>(*c));
    }
    if (!run.empty()) append_run(out, run);
    return out;
}

std::optional<std::string> decode_mailbox_name(std::string_view name) {
    std::string out;
    for (std::size_t at = 0; at < name.size();) {
        const char c = name[at];
        if (!is_printable_ascii(static_cast<unsigned char>(c))) return std::nullopt;
        if (c != '&') {
            out += c;
            ++at;
            continue;
        }
        const auto end = name.find('-', at + 1);
        if (end == std::string_view::npos) return std::nullopt;
        const std::string_view run = name.substr(at + 1, end - at - 1);
        at = end + 1;
        if (run.empty()) {
            out += '&';
        } else if (!decode_run(run, out)) {
            return std::nullopt;
        }
    }
    // Only the one spelling RFC 3501 permits: a name that would be encoded otherwise (two runs
    // side by side, printable ASCII in a run) would not be found again by the name sent back.
    if (encode_mailbox_name(out) != name) return std::nullopt;
    return out;
}

}  // namespace mailcanary::imap
