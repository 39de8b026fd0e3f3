// An in-process IMAP server that keeps mail the way Gmail does, for tests of what a client's
// commands leave behind there. Built from Gmail's documented behaviour:
// - developers.google.com/gmail/imap/imap-extensions: X-GM-EXT-1 in CAPABILITY; special-use
//   attributes (\All, \Drafts, \Flagged, \Important, \Junk, \Sent, \Trash) in every LIST reply,
//   whether asked for or not; folder names localised after "[Gmail]/" (or "[Google Mail]/").
// - developers.google.com/gmail/api/reference/rest/v1/ImapSettings and
//   support.google.com/mail/answer/78892: Auto-Expunge (on by default: a \Deleted flag expunges
//   at once) and what an expunge "from the last visible IMAP folder" does: archive by default.
// - A folder is a label: a message lives in All Mail and shows in each folder whose label it
//   carries; an expunge from INBOX takes the INBOX label off and the message stays in All Mail.
//   COPY to Trash adds the Trash label (the message then leaves All Mail), MOVE to Trash leaves
//   no other label, and an expunge from Trash deletes the message for good (the afterlogic
//   request "Provide Delete and Archive buttons for Gmail's peculiar IMAP"; overseers-desk/courier
//   #53 and sweetrb/apple-mail-mcp #88, both observed on Gmail: after a \Deleted + EXPUNGE in
//   INBOX, or in All Mail, the message is still in All Mail; a move to Trash removes it).
// - Search matches words, not substrings (emersion/go-imap #120): HEADER X-Mailcanary-Token "mc"
//   finds no "mc2.<...>" token.
// Each folder has its own UIDs and UIDVALIDITY, as on Gmail. What is not emulated: CONDSTORE,
// IDLE notices (IDLE is accepted and ended by DONE; the client finds new mail at its next look),
// X-GM-* fetch items and X-GM-RAW, moves into Spam or out of it other than to Trash, SMTP. One
// state serves every connection, so a limit on simultaneous connections (Gmail's 15) could be added
// in accept.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary::test {

struct FakeGmailOptions {
    // Folder names as sent on the wire (modified UTF-7); Gmail localises those after the prefix.
    std::string prefix = "[Gmail]";
    std::string trash = "[Gmail]/Trash";
    bool gmail_extensions = true;  // X-GM-EXT-1 in CAPABILITY
    bool move = true;              // MOVE (RFC 6851) in CAPABILITY
    bool auto_expunge = true;      // Gmail's default; off: \Deleted waits for an EXPUNGE
};

class FakeGmailServer {
  public:
    explicit FakeGmailServer(FakeGmailOptions options = {});
    ~FakeGmailServer();
    FakeGmailServer(const FakeGmailServer&) = delete;
    FakeGmailServer& operator=(const FakeGmailServer&) = delete;

    std::uint16_t port() const;

    // The folder names, as on the wire.
    std::string all_mail() const;
    std::string spam() const;
    std::string sent() const;
    const std::string& trash() const;

    // Files a message (header, empty line, body, CRLF line ends) as delivery would: "INBOX" or
    // another label gives it that label (and All Mail), all_mail() none (archived), trash() and
    // spam() put it there only.
    void deliver(std::string message, const std::string& folder = "INBOX");
    // Adds a label to every message containing `text`, as Gmail does to mail sent to oneself.
    void add_label(std::string_view text, const std::string& folder);

    // The folders where a message containing `text` shows now, once per copy (sorted).
    std::vector<std::string> folders_holding(std::string_view text) const;
    // How many messages exist, in any folder.
    std::size_t messages() const;
    // The commands clients sent, without CRLF, in the order read.
    std::vector<std::string> received_lines() const;

    // An outage, for tests of how clients come back: closes every connection open now (as a
    // restart would), and while `refusing`, greets each new one with BYE and closes it.
    void drop_connections();
    void refuse_connections(bool refusing);
    // The connections accepted, and of those the ones refused, so far.
    int connections() const;
    int refused() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mailcanary::test
