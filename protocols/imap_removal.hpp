// What a server's replies say about removing one message by UID: whether a STORE updated it
// (RFC 7162 CONDSTORE), whether a MOVE moved it (RFC 6851, RFC 4315 COPYUID), whether it was
// expunged (RFC 9051 7.5.1). The replies of other sessions' work come mixed in: a server
// reports their expunges during our commands too, which is why an EXPUNGE alone proves nothing
// about who removed a message. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "protocols/imap_dialog.hpp"

namespace mailcanary::imap {

// The argument of a resp-text-code named `name` ("UIDVALIDITY 3" -> "3"), if `code` is one.
std::optional<std::string_view> code_argument(std::string_view code, std::string_view name);

// Whether a set of UIDs such as "5", "3:7,9" or "9:3" (RFC 9051 sequence-set, without "*", as
// in COPYUID and MODIFIED) holds `uid`.
bool uid_set_contains(std::string_view set, std::uint32_t uid);

// Whether this UID STORE updated the message: the server names each message it updated in a
// FETCH with its UID, and a [MODIFIED] code names those an UNCHANGEDSINCE condition spared
// (RFC 7162 3.1.3). A message already expunged by someone else is neither.
bool store_updated(const Completion& completion, std::uint32_t uid);

// Whether this UID MOVE moved the message: COPYUID names the source UIDs the command itself
// moved. An EXPUNGE in its reply may be another session's move of the same message.
bool move_moved(const Completion& completion, std::uint32_t uid);

// Where a UID COPY or UID MOVE put the message: the destination's UIDVALIDITY and the UID that
// COPYUID (RFC 4315 3) pairs with `uid`, the n-th source UID going to the n-th destination UID,
// each set in ascending order. None without COPYUID naming `uid`, or when the sets do not pair.
struct Copy {
    std::uint32_t uid_validity = 0;
    std::uint32_t uid = 0;
    bool operator==(const Copy&) const = default;
};
std::optional<Copy> copied_to(const Completion& completion, std::uint32_t uid);

// One message's place in the selected mailbox, followed through untagged responses in the
// order the server sent them: a FETCH naming its UID gives its sequence number; an EXPUNGE of
// a lower number moves it down by one; an EXPUNGE of its own number says it is gone. Without
// QRESYNC, which the agent does not enable, servers report expunges this way only.
class MessagePosition {
  public:
    explicit MessagePosition(std::uint32_t uid) : uid_(uid) {}

    void follow(const std::vector<Response>& responses);
    bool expunged() const { return expunged_; }

  private:
    std::uint32_t uid_;
    std::optional<std::uint32_t> sequence_;
    bool expunged_ = false;
};

}  // namespace mailcanary::imap
