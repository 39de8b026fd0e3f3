#include "probes/mailbox_excerpts.hpp"

#include <algorithm>

namespace mailcanary {
namespace {

std::string shortened(std::string line) {
    if (line.size() <= MailboxExcerpts::kMaxLineBytes) return line;
    line.resize(MailboxExcerpts::kMaxLineBytes);
    return line + "...";
}

void write(const ImapExchange& exchange, Transcript& transcript) {
    transcript.add(Transcript::Direction::client, "[" + exchange.folder + "] " + exchange.command,
                   exchange.sent);
    for (const auto& reply : exchange.replies) {
        transcript.add(Transcript::Direction::server, reply, exchange.completed);
    }
}

}  // namespace

std::shared_ptr<const ImapExchange> make_exchange(std::string folder, std::string command,
                                                  const imap::Completion& completion,
                                                  std::chrono::steady_clock::time_point sent) {
    auto exchange = std::make_shared<ImapExchange>();
    exchange->folder = std::move(folder);
    exchange->command = std::move(command);
    exchange->sent = sent;
    exchange->completed = std::chrono::steady_clock::now();
    const auto& untagged = completion.untagged;
    const std::size_t shown = std::min(untagged.size(), MailboxExcerpts::kMaxReplyLines);
    for (std::size_t i = 0; i < shown; ++i) {
        exchange->replies.push_back(shortened(untagged[i].line));
    }
    if (untagged.size() > shown) {
        exchange->replies.push_back("(" + std::to_string(untagged.size() - shown) +
                                    " more untagged responses left out)");
    }
    exchange->replies.push_back(shortened(completion.describe()));
    return exchange;
}

void MailboxExcerpts::begin(const std::string& token) { kept_[token]; }

bool MailboxExcerpts::awaits_unseen() const {
    return std::any_of(kept_.begin(), kept_.end(),
                       [](const auto& entry) { return !entry.second.seen; });
}

void MailboxExcerpts::keep(Kept& kept, const std::shared_ptr<const ImapExchange>& exchange) {
    if (kept.first.size() < kFirstKept) {
        kept.first.push_back(exchange);
        return;
    }
    kept.last.push_back(exchange);
    if (kept.last.size() > kLastKept) {
        kept.last.pop_front();
        ++kept.left_out;
    }
}

void MailboxExcerpts::add(const std::string& token,
                          const std::shared_ptr<const ImapExchange>& exchange, bool shows_message) {
    const auto found = kept_.find(token);
    if (found == kept_.end()) return;
    keep(found->second, exchange);
    if (shows_message) found->second.seen = true;
}

void MailboxExcerpts::add_look_for_new_mail(const std::shared_ptr<const ImapExchange>& exchange) {
    for (auto& [token, kept] : kept_) {
        if (!kept.seen) keep(kept, exchange);
    }
}

void MailboxExcerpts::end(const std::string& token, Transcript* transcript) {
    const auto found = kept_.find(token);
    if (found == kept_.end()) return;
    if (transcript != nullptr) {
        const Kept& kept = found->second;
        for (const auto& exchange : kept.first) write(*exchange, *transcript);
        if (kept.left_out > 0) {
            transcript->note("(" + std::to_string(kept.left_out) + " more IMAP commands left out)");
        }
        for (const auto& exchange : kept.last) write(*exchange, *transcript);
    }
    kept_.erase(found);
}

}  // namespace mailcanary
