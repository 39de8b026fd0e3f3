// What a run's transcript shows of the IMAP side: the commands about its message, bounded.
#include "probes/mailbox_excerpts.hpp"

#include <gtest/gtest.h>

namespace mailcanary {
namespace {

std::shared_ptr<const ImapExchange> exchange(const std::string& command,
                                             std::vector<std::string> untagged = {}) {
    imap::Completion completion;
    completion.status = imap::Status::ok;
    completion.text = "done";
    for (auto& line : untagged) {
        imap::Response response;
        response.line = std::move(line);
        completion.untagged.push_back(std::move(response));
    }
    return make_exchange("INBOX", command, completion, std::chrono::steady_clock::now());
}

std::vector<std::string> lines_of(const Transcript& transcript) {
    std::vector<std::string> lines;
    for (const auto& entry : transcript.entries()) lines.push_back(entry.text);
    return lines;
}

TEST(MailboxExcerpts, ARunSeesTheSearchesForItsMessageThenItsFetchAndRemoval) {
    MailboxExcerpts excerpts;
    EXPECT_FALSE(excerpts.awaits_unseen());
    excerpts.begin("mine");
    excerpts.begin("other");
    EXPECT_TRUE(excerpts.awaits_unseen());
    excerpts.add_look_for_new_mail(
        exchange("UID SEARCH UID 4:* HEADER X-Mailcanary-Token \"mc\"", {"* SEARCH 7"}));
    excerpts.add("mine", exchange("UID FETCH 7 (UID)", {"* 3 FETCH (UID 7 {120}"}), true);
    excerpts.add("mine", exchange("UID EXPUNGE 7", {"* 3 EXPUNGE"}));
    excerpts.add_look_for_new_mail(
        exchange("UID SEARCH UID 8:*", {"* SEARCH"}));    // only for "other"
    excerpts.add("stranger", exchange("UID EXPUNGE 9"));  // nobody's run

    Transcript transcript;
    excerpts.end("mine", &transcript);
    EXPECT_EQ(lines_of(transcript),
              (std::vector<std::string>{
                  "[INBOX] UID SEARCH UID 4:* HEADER X-Mailcanary-Token \"mc\"", "* SEARCH 7",
                  "OK done", "[INBOX] UID FETCH 7 (UID)", "* 3 FETCH (UID 7 {120}", "OK done",
                  "[INBOX] UID EXPUNGE 7", "* 3 EXPUNGE", "OK done"}));
    EXPECT_EQ(transcript.entries()[0].direction, Transcript::Direction::client);
    EXPECT_EQ(transcript.entries()[1].direction, Transcript::Direction::server);
    EXPECT_FALSE(excerpts.wants("mine")) << "forgotten once written";
    EXPECT_TRUE(excerpts.wants("other"));

    Transcript other;
    excerpts.end("other", &other);
    EXPECT_EQ(other.entries().size(), 6u) << "both looks for new mail, nothing else";
    EXPECT_FALSE(excerpts.awaits_unseen());
}

TEST(MailboxExcerpts, ALongWaitKeepsTheFirstAndLastCommandsAndShortLines) {
    MailboxExcerpts excerpts;
    excerpts.begin("lost");
    const std::size_t looks = 50;
    for (std::size_t i = 0; i < looks; ++i) {
        excerpts.add_look_for_new_mail(exchange("UID SEARCH " + std::to_string(i)));
    }
    std::vector<std::string> many(20, std::string(500, 'x'));
    excerpts.add("lost", exchange("UID FETCH 1:20 (UID)", many));

    Transcript transcript;
    excerpts.end("lost", &transcript);
    const auto lines = lines_of(transcript);
    EXPECT_EQ(lines.front(), "[INBOX] UID SEARCH 0");
    const auto left_out =
        std::find(lines.begin(), lines.end(),
                  "(" + std::to_string(looks + 1 - 3 - 8) + " more IMAP commands left out)");
    ASSERT_NE(left_out, lines.end());
    EXPECT_EQ(*(left_out - 2), "[INBOX] UID SEARCH 2");
    EXPECT_EQ(*(left_out + 1), "[INBOX] UID SEARCH 43");
    const auto fetch = std::find(lines.begin(), lines.end(), "[INBOX] UID FETCH 1:20 (UID)");
    ASSERT_NE(fetch, lines.end());
    EXPECT_EQ(*(fetch + 1), std::string(200, 'x') + "...");
    EXPECT_EQ(*(fetch + 7), "(14 more untagged responses left out)");
    EXPECT_EQ(*(fetch + 8), "OK done");
    EXPECT_EQ(fetch + 9, lines.end());
    EXPECT_FALSE(transcript.truncated());
}

TEST(MailboxExcerpts, AnAbandonedRunsExcerptIsDropped) {
    MailboxExcerpts excerpts;
    excerpts.begin("abandoned");
    excerpts.add_look_for_new_mail(exchange("UID SEARCH ALL"));
    excerpts.end("abandoned", nullptr);
    EXPECT_FALSE(excerpts.wants("abandoned"));
    EXPECT_FALSE(excerpts.awaits_unseen());
}

}  // namespace
}  // namespace mailcanary
