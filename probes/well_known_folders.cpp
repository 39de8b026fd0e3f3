#include "probes/well_known_folders.hpp"

#include <algorithm>
#include <array>

#include "common/log.hpp"
#include "common/text.hpp"
#include "protocols/imap_utf7.hpp"

namespace mailcanary {
namespace {

// The names providers give their junk folder when LIST flags none, as their IMAP servers list
// them (sources in tests/unit/well_known_folders_test.cpp): Dovecot's and most servers' defaults,
// Gmail's (which does flag it), Exchange Online's and Outlook.com's, Yahoo's old and new.
constexpr std::array<std::string_view, 7> kJunkNames{
    "Junk", "Spam", "[Gmail]/Spam", "Junk Email", "Junk E-mail", "Bulk Mail", "Bulk",
};
// And the trash: most servers', Exchange's, Outlook.com's, Apple's.
constexpr std::array<std::string_view, 4> kTrashNames{"Trash", "Deleted Items", "Deleted",
                                                      "Deleted Messages"};

bool has_flag(const ListedFolder& folder, std::string_view flag) {
    return std::any_of(folder.flags.begin(), folder.flags.end(),
                       [&](const std::string& listed) { return iequals(listed, flag); });
}

}  // namespace

std::string_view to_string(WellKnownFolders::Source source) {
    switch (source) {
        case WellKnownFolders::Source::configured:
            return "configuration";
        case WellKnownFolders::Source::special_use:
            return "special-use flags";
        case WellKnownFolders::Source::names:
            break;
    }
    return "names";
}

std::vector<ListedFolder> listed_folders(const std::vector<imap::Response>& untagged) {
    std::vector<ListedFolder> folders;
    for (const auto& response : untagged) {
        // mailbox-list = "(" flags ")" SP delimiter SP mailbox (RFC 9051 7.3.1)
        if (response.name != "LIST" || response.data.size() < 3) continue;
        auto name = imap::decode_mailbox_name(response.data[2].text);
        if (!name) continue;
        ListedFolder folder{std::move(*name), {}};
        for (const auto& flag : response.data[0].items) folder.flags.push_back(flag.text);
        folders.push_back(std::move(folder));
    }
    return folders;
}

WellKnownFolders well_known_folders(const std::vector<ListedFolder>& listed,
                                    const std::optional<std::vector<std::string>>& configured_junk,
                                    std::string_view mailbox) {
    const auto existing = [&](std::string_view wanted) -> const ListedFolder* {
        const auto found = std::find_if(listed.begin(), listed.end(), [&](const auto& folder) {
            return iequals(folder.name, wanted);
        });
        return found == listed.end() ? nullptr : &*found;
    };
    WellKnownFolders found;
    if (configured_junk) {
        found.junk = *configured_junk;
        found.junk_source = WellKnownFolders::Source::configured;
    } else {
        for (const auto& folder : listed) {
            if (has_flag(folder, "\\Junk")) found.junk.push_back(folder.name);
        }
        found.junk_source = WellKnownFolders::Source::special_use;
        if (found.junk.empty()) {
            found.junk_source = WellKnownFolders::Source::names;
            for (const std::string_view name : kJunkNames) {
                // As listed: the server's spelling is the one SELECT knows.
                if (const auto* folder = existing(name)) found.junk.push_back(folder->name);
            }
        }
    }
    std::erase_if(found.junk, [&](const std::string& name) { return iequals(name, mailbox); });

    const auto flagged_trash = std::find_if(listed.begin(), listed.end(), [](const auto& folder) {
        return has_flag(folder, "\\Trash");
    });
    if (flagged_trash != listed.end()) {
        found.trash = flagged_trash->name;
    } else {
        for (const std::string_view name : kTrashNames) {
            if (const auto* folder = existing(name)) {
                found.trash = folder->name;
                break;
            }
        }
    }
    return found;
}

void log_watched_folders(const WellKnownFolders& found, std::string_view label,
                         std::string_view mailbox, bool trash_used) {
    std::string junk;
    for (const auto& name : found.junk) junk += (junk.empty() ? "" : ", ") + name;
    const std::string trash = !trash_used ? "unused (cleanup is not \"trash\")"
                                          : found.trash.value_or("Trash (not listed)");
    log::info("watched folders", {{"mailbox", label},
                                  {"inbox", mailbox},
                                  {"junk", junk.empty() ? "none" : junk},
                                  {"junk_found_by", to_string(found.junk_source)},
                                  {"trash", trash}});
    if (found.junk.empty() && found.junk_source != WellKnownFolders::Source::configured) {
        log::warn(
            "no junk folder found: a probe message filed as junk will be reported lost; "
            "name it in junk_folders",
            {{"mailbox", label}});
    }
}

}  // namespace mailcanary
