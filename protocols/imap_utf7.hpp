// Mailbox names as IMAP4rev1 sends and takes them (RFC 3501 5.1.3): modified UTF-7. Printable
// ASCII stands for itself, except "&", which is "&-"; anything else is a run of "&", modified
// base64 ("," for "/", no padding) of its UTF-16, and "-". A server speaks UTF-8 names only after
// ENABLE UTF8=ACCEPT (RFC 6855), which mailcanary never sends. Inside mailcanary names are
// UTF-8, as the configuration has them; they are encoded going out and decoded coming in.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailcanary::imap {

// "Корзина" -> "&BBoEPgRABDcEOAQ9BDA-". nullopt when `utf8` is not valid UTF-8.
std::optional<std::string> encode_mailbox_name(std::string_view utf8);

// The reverse. nullopt when `name` is not modified UTF-7 as RFC 3501 permits it: a byte outside
// printable ASCII, an "&" run that is not closed by "-", holds other than modified base64, leaves
// bits over, does not make whole UTF-16 (an unpaired surrogate), or is not the one spelling the
// encoder would give (a superfluous shift: "&U,BTFw-&ZeVnLIqe-"), as Dovecot also refuses.
std::optional<std::string> decode_mailbox_name(std::string_view name);

}  // namespace mailcanary::imap
