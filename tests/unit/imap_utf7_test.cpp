// Mailbox names in modified UTF-7 (RFC 3501 5.1.3), both ways. The expected encodings are RFC
// 3501's own examples and what Dovecot 2.3 answers to `doveadm mailbox mutf7`; the provider
// names are as Exchange and Gmail list them (postalsys/emailengine #295: "Wa&AXw-ne"; Gmail's
// localised "[Gmail]/&BCcENQRABD0EPgQyBDgEOgQ4-").
#include "protocols/imap_utf7.hpp"

#include <gtest/gtest.h>

#include "protocols/imap_response.hpp"

namespace mailcanary::imap {
namespace {

struct Name {
    std::string utf8;
    std::string wire;
};

const std::vector<Name> kNames{
    {"INBOX", "INBOX"},
    {"Papierkorb", "Papierkorb"},
    {"Junk Email", "Junk Email"},
    {"&", "&-"},
    {"Probes & Co", "Probes &- Co"},
    {"Корзина", "&BBoEPgRABDcEOAQ9BDA-"},
    {"Удаленные", "&BCMENAQwBDsENQQ9BD0ESwQ1-"},
    {"Éléments supprimés", "&AMk-l&AOk-ments supprim&AOk-s"},
    {"Ważne", "Wa&AXw-ne"},
    {"[Gmail]/Черновики", "[Gmail]/&BCcENQRABD0EPgQyBDgEOgQ4-"},
    // RFC 3501's example, and its one spelling of two scripts side by side.
    {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
    {"台北日本語", "&U,BTF2XlZyyKng-"},
    // Beyond the BMP: a surrogate pair in the run.
    {"📬 Probes & Co", "&2D3c7A- Probes &- Co"},
    // Control characters are not printable: they go in a run too.
    {"a\tb", "a&AAk-b"},
};

TEST(ModifiedUtf7, EncodesAndDecodesRfcAndProviderNames) {
    for (const auto& [utf8, wire] : kNames) {
        EXPECT_EQ(encode_mailbox_name(utf8), wire) << utf8;
        EXPECT_EQ(decode_mailbox_name(wire), utf8) << wire;
    }
}

TEST(ModifiedUtf7, RefusesWhatIsNotUtf8) {
    for (const std::string& bad : {std::string("\xff"), std::string("caf\xc3"),
                                   std::string("\xc0\xaf"),             // overlong "/"
                                   std::string("\xed\xa0\x80"),         // a surrogate
                                   std::string("\xf4\x90\x80\x80")}) {  // beyond U+10FFFF
        EXPECT_FALSE(encode_mailbox_name(bad)) << bad;
    }
}

TEST(ModifiedUtf7, RefusesWhatIsNotModifiedUtf7) {
    for (const std::string& bad : {
             std::string("&Jjo!"),               // RFC 3501: no shift back before "!"
             std::string("&U,BTFw-&ZeVnLIqe-"),  // RFC 3501: a superfluous shift
             std::string("&AGE-"),               // "a" in a run: printable ASCII must stand alone
             std::string("&Jj/-"),               // "/" is not modified base64 ("," is)
             std::string("&Jjp-"),               // bits over that are not zero
             std::string("&2D0-"),               // a high surrogate without its low half
             std::string("&3Ow-"),               // a low surrogate alone
             std::string("Корзина"),             // 8-bit: a server must not send it so
             std::string("tab\there"),           // a control character outside a run
         }) {
        EXPECT_FALSE(decode_mailbox_name(bad)) << bad;
    }
}

TEST(ModifiedUtf7, MailboxArgumentsAreEncodedThenQuoted) {
    // Before, quoting refused the 8-bit bytes and a UTF-8 name went out as "".
    EXPECT_EQ(mailbox_argument("Корзина"), "\"&BBoEPgRABDcEOAQ9BDA-\"");
    EXPECT_EQ(mailbox_argument("Junk Email"), "\"Junk Email\"");
    EXPECT_EQ(mailbox_argument("say \"hi\" & go"), "\"say \\\"hi\\\" &- go\"");
    EXPECT_EQ(mailbox_argument("\xff"), "\"\"");
}

}  // namespace
}  // namespace mailcanary::imap
