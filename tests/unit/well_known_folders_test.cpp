// Junk and trash found as each provider lists its folders. The LIST replies are the providers'
// own, as public traces show them:
// - Exchange Online / Microsoft 365: no SPECIAL-USE and no flags; "Junk Email", "Deleted Items"
//   (huacnlee/omamail #90, checked against outlook.office365.com; nylas/nylas-mail #1185).
// - Exchange on premises: flags without the capability, "Junk E-mail" and "Deleted Items"
//   (postalsys/emailengine #295); localised names in the mailbox's language ("Wa&AXw-ne").
// - Outlook.com: the trash is "Deleted" (mjs/imapclient #419, #420).
// - Yahoo: no SPECIAL-USE; the junk folder is "Bulk Mail" (jstedfast/MailKit #242, #887, #959),
//   "Bulk" on the newer servers (mailcanary issue #19).
// - Gmail: SPECIAL-USE flags on "[Gmail]/Spam" and "[Gmail]/Trash" (localised after "[Gmail]/").
// The fallback names follow imapclient's _POPULAR_SPECIAL_FOLDERS and imapflow's special-use
// table, plus Exchange's and Yahoo's junk folders, which both miss.
#include "probes/well_known_folders.hpp"

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

std::vector<ListedFolder> listing(std::string_view bytes) {
    imap::ResponseReader reader;
    reader.feed(bytes);
    std::vector<imap::Response> untagged;
    while (auto response = reader.next()) untagged.push_back(std::move(*response));
    EXPECT_EQ(reader.error(), "");
    return listed_folders(untagged);
}

using Names = std::vector<std::string>;

TEST(WellKnownFolders, ExchangeOnlineByItsNames) {
    const auto listed = listing(
        "* LIST (\\HasNoChildren) \"/\" Archive\r\n"
        "* LIST (\\HasNoChildren) \"/\" \"Deleted Items\"\r\n"
        "* LIST (\\HasNoChildren) \"/\" Drafts\r\n"
        "* LIST (\\Marked \\HasNoChildren) \"/\" INBOX\r\n"
        "* LIST (\\HasNoChildren) \"/\" \"Junk Email\"\r\n"
        "* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n"
        "* LIST (\\HasNoChildren) \"/\" \"Wa&AXw-ne\"\r\n");
    const auto found = well_known_folders(listed, std::nullopt, "INBOX");
    EXPECT_EQ(found.junk, Names{"Junk Email"});
    EXPECT_EQ(to_string(found.junk_source), "names");
    EXPECT_EQ(found.trash, "Deleted Items");
    // Names are decoded: a folder named in the mailbox's language is there by its real name.
    EXPECT_EQ(listed.back().name, "Ważne");
}

TEST(WellKnownFolders, ExchangeOnPremisesByItsFlags) {
    const auto found = well_known_folders(listing("* LIST (\\Inbox) \"/\" \"INBOX\"\r\n"
                                                  "* LIST (\\Trash) \"/\" \"Deleted Items\"\r\n"
                                                  "* LIST (\\Drafts) \"/\" \"Drafts\"\r\n"
                                                  "* LIST (\\Junk) \"/\" \"Junk E-mail\"\r\n"
                                                  "* LIST (\\Sent) \"/\" \"Sent Items\"\r\n"),
                                          std::nullopt, "INBOX");
    EXPECT_EQ(found.junk, Names{"Junk E-mail"});
    EXPECT_EQ(to_string(found.junk_source), "special-use flags");
    EXPECT_EQ(found.trash, "Deleted Items");
}

TEST(WellKnownFolders, OutlookComTrashAndYahooBulk) {
    const auto outlook = well_known_folders(listing("* LIST (\\HasNoChildren) \"/\" Deleted\r\n"
                                                    "* LIST (\\HasNoChildren) \"/\" Junk\r\n"
                                                    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"),
                                            std::nullopt, "INBOX");
    EXPECT_EQ(outlook.junk, Names{"Junk"});
    EXPECT_EQ(outlook.trash, "Deleted");

    const auto yahoo = well_known_folders(listing("* LIST (\\HasNoChildren) \"/\" \"Bulk Mail\"\r\n"
                                                  "* LIST (\\HasNoChildren) \"/\" \"Draft\"\r\n"
                                                  "* LIST (\\HasNoChildren) \"/\" \"Inbox\"\r\n"
                                                  "* LIST (\\HasNoChildren) \"/\" \"Sent\"\r\n"
                                                  "* LIST (\\HasNoChildren) \"/\" \"Trash\"\r\n"),
                                          std::nullopt, "INBOX");
    EXPECT_EQ(yahoo.junk, Names{"Bulk Mail"});
    EXPECT_EQ(yahoo.trash, "Trash");
    const auto yahoo_now = well_known_folders(
        listing("* LIST (\\HasNoChildren) \"/\" \"Bulk\"\r\n"), std::nullopt, "INBOX");
    EXPECT_EQ(yahoo_now.junk, Names{"Bulk"});
}

TEST(WellKnownFolders, GmailByItsFlagsWhateverTheLanguage) {
    const auto found = well_known_folders(
        listing("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n"
                "* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/Alle Nachrichten\"\r\n"
                "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Papierkorb\"\r\n"
                "* LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n"),
        std::nullopt, "INBOX");
    EXPECT_EQ(found.junk, Names{"[Gmail]/Spam"});
    EXPECT_EQ(found.trash, "[Gmail]/Papierkorb");
}

TEST(WellKnownFolders, TheServersSpellingIsKept) {
    const auto found = well_known_folders(listing("* LIST () \"/\" \"JUNK EMAIL\"\r\n"
                                                  "* LIST () \"/\" \"deleted items\"\r\n"),
                                          std::nullopt, "INBOX");
    EXPECT_EQ(found.junk, Names{"JUNK EMAIL"});
    EXPECT_EQ(found.trash, "deleted items");
}

TEST(WellKnownFolders, ConfiguredJunkFoldersAreTakenAsTheyAre) {
    const auto listed = listing("* LIST (\\Junk) \"/\" Junk\r\n");
    const auto found = well_known_folders(
        listed, std::vector<std::string>{"Courrier indésirable", "INBOX"}, "INBOX");
    // The watched mailbox itself is never a junk folder too.
    EXPECT_EQ(found.junk, Names{"Courrier indésirable"});
    EXPECT_EQ(to_string(found.junk_source), "configuration");
    const auto none = well_known_folders(listed, std::vector<std::string>{}, "INBOX");
    EXPECT_TRUE(none.junk.empty());
}

TEST(WellKnownFolders, NothingToFindIsNothing) {
    const auto found = well_known_folders(
        listing("* LIST () \"/\" INBOX\r\n* LIST () \"/\" \"Junk Drawer\"\r\n"
                "* LIST () \"/\" \"Not &Jjo!\"\r\n"),  // not modified UTF-7: left out
        std::nullopt, "INBOX");
    EXPECT_TRUE(found.junk.empty());
    EXPECT_FALSE(found.trash);
}

}  // namespace
}  // namespace mailcanary
