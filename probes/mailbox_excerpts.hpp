// What the mailbox said about each awaited message, for its run's transcript: the IMAP commands
// that looked for it (fetches of new mail), looked at it (its headers) and removed it (store,
// expunge, move), with the server's replies, so a lost or late run shows what the mailbox
// answered. Bounded per message: the first and the last few commands, few reply lines, short
// lines. The commands carry no credentials (the login is not kept) and replies show no literals,
// so no token either.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/transcript.hpp"
#include "protocols/imap_dialog.hpp"

namespace mailcanary {

// One command in a folder and the server's reply: its untagged responses' first lines, then
// the completion.
struct ImapExchange {
    std::string folder;
    std::string command;
    std::vector<std::string> replies;
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point completed;
};

// Limits replies to kMaxReplyLines lines of kMaxLineBytes, saying how many were left out.
std::shared_ptr<const ImapExchange> make_exchange(std::string folder, std::string command,
                                                  const imap::Completion& completion,
                                                  std::chrono::steady_clock::time_point sent);

class MailboxExcerpts {
  public:
    static constexpr std::size_t kFirstKept = 3;
    static constexpr std::size_t kLastKept = 8;
    static constexpr std::size_t kMaxReplyLines = 6;
    static constexpr std::size_t kMaxLineBytes = 200;

    // From now on, commands concerning `token`'s message are kept for its run.
    void begin(const std::string& token);
    bool wants(const std::string& token) const { return kept_.contains(token); }
    // Whether a look for new mail now concerns any run: one waits for a message not seen yet.
    bool awaits_unseen() const;
    // A command about this message (a fetch that showed it, its removal). Once a fetch showed
    // it, later looks for new mail are no longer about it.
    void add(const std::string& token, const std::shared_ptr<const ImapExchange>& exchange,
             bool shows_message = false);
    // A look for new mail (the fetch of new UIDs' token headers): it concerns every message not
    // seen yet.
    void add_look_for_new_mail(const std::shared_ptr<const ImapExchange>& exchange);
    // Writes what was kept for `token` into `transcript`, if given, and forgets it.
    void end(const std::string& token, Transcript* transcript);

  private:
    struct Kept {
        std::vector<std::shared_ptr<const ImapExchange>> first;
        std::deque<std::shared_ptr<const ImapExchange>> last;
        std::size_t left_out = 0;
        bool seen = false;
    };
    static void keep(Kept& kept, const std::shared_ptr<const ImapExchange>& exchange);

    std::map<std::string, Kept> kept_;
};

}  // namespace mailcanary
