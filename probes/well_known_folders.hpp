// Which folders of a mailbox the round trip watches besides the mailbox itself (its junk
// folders), and where its trash is: by the special-use flags of LIST (RFC 6154) where the server
// sets them, else by the names the big providers give those folders, since Exchange Online, for
// one, sets none. Names are UTF-8 here; LIST sends them in modified UTF-7.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/imap_response.hpp"

namespace mailcanary {

struct ListedFolder {
    std::string name;                // decoded
    std::vector<std::string> flags;  // "\HasNoChildren", "\Junk", ...
};

// The folders of a LIST's untagged responses. A name that is not modified UTF-7 is left out: it
// cannot be one of the names below, and could not be asked for by name again.
std::vector<ListedFolder> listed_folders(const std::vector<imap::Response>& untagged);

struct WellKnownFolders {
    enum class Source { configured, special_use, names };
    std::vector<std::string> junk;  // never the watched mailbox itself
    Source junk_source = Source::names;
    std::optional<std::string> trash;
};

std::string_view to_string(WellKnownFolders::Source source);

// `configured_junk`: junk_folders when set, taken as it is. Otherwise the folders flagged \Junk,
// else those of the fallback names that exist (compared without regard to ASCII case). The
// trash: the folder flagged \Trash, else the first fallback name that exists.
WellKnownFolders well_known_folders(const std::vector<ListedFolder>& listed,
                                    const std::optional<std::vector<std::string>>& configured_junk,
                                    std::string_view mailbox);

// Logs, once per mailbox, which folders are watched and how they were found; warns when no junk
// folder was, since mail filed as junk would then be reported lost.
void log_watched_folders(const WellKnownFolders& found, std::string_view label,
                         std::string_view mailbox, bool trash_used);

}  // namespace mailcanary
