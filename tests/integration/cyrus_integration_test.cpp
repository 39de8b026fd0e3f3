// The roundtrip and imap probes against a second real IMAP server: Cyrus IMAP 3.6 as Debian 12
// ships it (tests/stack/cyrus.sh), fed by the stack's Postfix over LMTP for @cyrus.test. Its
// folders are INBOX.Junk and INBOX.Trash with lower-case \junk and \trash special-use flags.
// What the agent did is checked with another client (libcurl) and with Cyrus's own transcript
// of every session (its telemetry), not with the agent's word.
#include <regex>
#include <sstream>

#include "integration/harness.hpp"

namespace mailcanary::test {
namespace {

class CyrusIntegration : public AgentIntegration {
  protected:
    CyrusIntegration() : cyrus_(stack_env("cyrus.env")) {
        // Cyrus appends to a session's transcript file; start from none so that what is read
        // back is this test's.
        for (const auto& entry : fs::directory_iterator(cyrus_.at("CYRUS_TELEMETRY_DIR"))) {
            fs::remove(entry.path());
        }
        cyrus_log_offset_ = read_file(cyrus_.at("CYRUS_LOG")).size();
        // Mail is kept across the stack's restarts: look only at what arrives from now on.
        for (const std::string& folder :
             {std::string("INBOX"), cyrus("CYRUS_JUNK_FOLDER"), cyrus("CYRUS_TRASH_FOLDER")}) {
            first_uid_[folder] = uid_next(folder);
        }
    }

    std::string cyrus(const char* key) const { return cyrus_.at(key); }

    // A roundtrip target: SMTP with STARTTLS to the stack's Postfix, which delivers to Cyrus,
    // then the probe user's Cyrus mailbox over IMAP. `roundtrip_extra` goes into
    // [targets.roundtrip], `message_extra` into [targets.message].
    std::string roundtrip_target(const std::string& name, const char* imap_port_key,
                                 const std::string& imap_tls,
                                 const std::string& roundtrip_extra = "",
                                 const std::string& message_extra = "") const {
        return target(name, port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"roundtrip\"]\n" + tls_options() +
                          "[targets.message]\nfrom = \"canary@mailcanary.test\"\nto = [\"" +
                          cyrus("CYRUS_USER") + "\"]\n" + message_extra +
                          "[targets.roundtrip]\nimap_host = \"" + cyrus("CYRUS_HOST") +
                          "\"\nimap_port = " + cyrus(imap_port_key) + "\nimap_tls = \"" + imap_tls +
                          "\"\nusername = \"" + cyrus("CYRUS_USER") + "\"\npassword_file = \"" +
                          cyrus("CYRUS_PASSWORD_FILE") + "\"\ntimeout = \"10s\"\n" +
                          roundtrip_extra + "[targets.roundtrip.tls_options]\nca_file = \"" + ca() +
                          "\"\n");
    }

    // One IMAP command in `folder` (SELECTed first) by libcurl over STARTTLS, as the probe
    // user; the server's untagged answers. A literal's content is not in them: see fetch().
    std::string imap(const std::string& folder, const std::string& command) const {
        return curl_imap(folder, command);
    }
    // The UIDs that `UID SEARCH <criteria>` finds in `folder`.
    std::vector<std::string> search(const std::string& folder, const std::string& criteria) const {
        const std::string answer = imap(folder, "UID SEARCH " + criteria);
        std::vector<std::string> uids;
        const auto at = answer.find("* SEARCH");
        if (at == std::string::npos) {
            ADD_FAILURE() << "no SEARCH answer in " << folder << ": " << answer;
            return uids;
        }
        std::istringstream words(answer.substr(at + 8, answer.find('\n', at) - at - 8));
        for (std::string uid; words >> uid;) uids.push_back(uid);
        return uids;
    }
    // The message's header fields `fields` (e.g. "X-MAILCANARY-TOKEN").
    std::string fetch(const std::string& folder, const std::string& uid,
                      const std::string& fields) const {
        return curl_imap(folder + ";UID=" + uid + ";SECTION=HEADER.FIELDS%20(" + fields + ")", "");
    }
    // The folder's next UID: messages from here on arrived during this test.
    std::string uid_next(const std::string& folder) const {
        std::smatch match;
        const std::string answer = imap("INBOX", "STATUS \"" + folder + "\" (UIDNEXT)");
        if (!std::regex_search(answer, match, std::regex(R"(UIDNEXT (\d+))"))) {
            ADD_FAILURE() << "no UIDNEXT for " << folder << ": " << answer;
            return "1";
        }
        return match[1].str();
    }

    // Messages that arrived in `folder` during this test carrying a token its agent issued.
    int own_messages(const std::string& folder) const {
        const OwnTokens own(dir_);
        if (!own.known()) return -1;
        int found = 0;
        // Every message since the test began: the token check, not the server's search, decides.
        for (const auto& uid : search(folder, "UID " + first_uid_.at(folder) + ":*")) {
            if (own.in(fetch(folder, uid, "X-MAILCANARY-TOKEN"))) ++found;
        }
        return found;
    }

    // What another client put into INBOX: a personal message, one with a token the agent did
    // not sign (same subject as its own), and one flagged \Deleted but not expunged yet. The
    // agent must leave all three alone.
    void add_others_messages() {
        marker_ = "others-" + std::to_string(getpid()) + "-" +
                  testing::UnitTest::GetInstance()->current_test_info()->name();
        append("", "From: friend@example.test\r\nSubject: lunch?\r\nMessage-ID: <personal-" +
                       marker_ + "@example.test>\r\n\r\nat noon\r\n");
        append("",
               "From: someone@example.test\r\nSubject: mailcanary probe\r\n"
               "X-Mailcanary-Token: mc1.00000000000000000000000000000000."
               "00000000000000000000000000000000\r\nMessage-ID: <forged-" +
                   marker_ + "@example.test>\r\n\r\nnot yours\r\n");
        append("\\Deleted", "From: friend@example.test\r\nSubject: old\r\nMessage-ID: <deleted-" +
                                marker_ + "@example.test>\r\n\r\nto be expunged by its owner\r\n");
    }
    void expect_others_messages_untouched() const {
        for (const char* kind : {"personal", "forged", "deleted"}) {
            EXPECT_EQ(
                search("INBOX", "HEADER Message-ID " + std::string(kind) + "-" + marker_).size(),
                1u)
                << kind;
        }
        EXPECT_EQ(search("INBOX", "DELETED HEADER Message-ID deleted-" + marker_).size(), 1u)
            << "still flagged \\Deleted, and not expunged";
    }

    // Every line of Cyrus's transcripts of this test's sessions (clients' lines start "<").
    std::string telemetry() const {
        std::string all;
        for (const auto& entry : fs::directory_iterator(cyrus("CYRUS_TELEMETRY_DIR"))) {
            all += read_file(entry.path());
        }
        return all;
    }
    // Cyrus's log since this test began.
    std::string cyrus_log() const {
        return read_file(cyrus("CYRUS_LOG")).substr(cyrus_log_offset_);
    }

  private:
    void append(const std::string& flags, const std::string& message) const {
        const fs::path file = dir_ / "append.eml";
        std::ofstream(file, std::ios::binary) << message;
        const std::string command = "bash " MAILCANARY_SOURCE_DIR "/tests/stack/cyrus.sh append " +
                                    cyrus("MAILCANARY_STACK_DIR_PATH") + " probe INBOX '" + flags +
                                    "' < " + file.string();
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
    }

    std::string curl_imap(const std::string& path, const std::string& command) const {
        std::string answer;
        CURL* curl = curl_easy_init();
        const std::string url =
            "imap://" + cyrus("CYRUS_HOST") + ":" + cyrus("CYRUS_IMAP_PORT") + "/" + path;
        const std::string password = read_file(cyrus("CYRUS_PASSWORD_FILE"));
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca().c_str());
        curl_easy_setopt(curl, CURLOPT_USERNAME, cyrus("CYRUS_USER").c_str());
        curl_easy_setopt(curl, CURLOPT_PASSWORD, password.c_str());
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
        if (!command.empty()) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, command.c_str());
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to_string);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
        const CURLcode result = curl_easy_perform(curl);
        curl_easy_cleanup(curl);
        EXPECT_EQ(result, CURLE_OK) << url << " " << command << ": " << curl_easy_strerror(result);
        return answer;
    }

    std::map<std::string, std::string> cyrus_;
    std::size_t cyrus_log_offset_ = 0;
    std::map<std::string, std::string> first_uid_;  // by folder
    std::string marker_;
};

std::string series(const std::string& name, const std::string& target,
                   const std::string& extra_labels = "") {
    return name + "{" + extra_labels + "target=\"" + target + "\"}";
}

std::string delivered(const std::string& target, const std::string& folder) {
    return series("mailcanary_roundtrip_delivered_total", target, "folder=\"" + folder + "\",");
}

double mean_roundtrip(const std::string& text, const std::string& target) {
    return value_of(text, series("mailcanary_roundtrip_seconds_sum", target)) /
           value_of(text, series("mailcanary_roundtrip_seconds_count", target));
}

// A client's command in Cyrus's telemetry: "<time<TAG COMMAND ...".
bool client_sent(const std::string& telemetry, const std::string& command_pattern) {
    return std::regex_search(telemetry, std::regex("<[0-9]+<[A-Za-z0-9]+ " + command_pattern));
}

// With Cyrus's idled, IDLE tells of new mail at once: IDLE alone (no prompt checks) measures
// delivery. cleanup = "trash" moves the message into INBOX.Trash (the \trash folder) by UID MOVE.
TEST_F(CyrusIntegration, InboxOverStarttlsWithIdleAndMovedToTheTrash) {
    add_others_messages();
    const std::string trash = cyrus("CYRUS_TRASH_FOLDER");
    AgentProcess agent(dir_,
                       header() + roundtrip_target("cyrus-idle", "CYRUS_IMAP_PORT", "starttls",
                                                   "cleanup = \"trash\"\n"
                                                   "prompt_checks = false\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    auto text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, delivered("cyrus-idle", "inbox")) >= 3; },
        20s);
    ASSERT_GE(value_of(text, delivered("cyrus-idle", "inbox")), 3) << text << agent.log();
    EXPECT_EQ(count_between_runs(agent, {"cyrus-idle"}, [&] { return own_messages("INBOX"); }), 0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);

    EXPECT_EQ(value_of(text, success_series("cyrus-idle", "roundtrip")), 1) << text;
    EXPECT_EQ(value_of(text, series("mailcanary_roundtrip_lost_total", "cyrus-idle")), 0) << text;
    EXPECT_NE(agent.log().find("mode=idle"), std::string::npos) << agent.log();
    // Cyrus polls every 60 s when idled cannot be reached: seconds here would mean no push.
    EXPECT_LT(mean_roundtrip(text, "cyrus-idle"), 2) << text;
    // Every message delivered sits in the trash now (and was moved there, not copied).
    EXPECT_GE(own_messages(trash), 3);
    const std::string sessions = telemetry();
    EXPECT_TRUE(client_sent(sessions, "UID MOVE [0-9,:]+ \"" + trash + "\"")) << sessions;
    EXPECT_FALSE(client_sent(sessions, "UID COPY")) << sessions;
    expect_others_messages_untouched();
}

// Cyrus's Sieve script files a message with the stack's junk header into INBOX.Junk, which the
// agent finds by its lower-case \junk flag.
TEST_F(CyrusIntegration, FiledIntoJunkOverImplicitTlsIsAJunkFailure) {
    const std::string junk_folder = cyrus("CYRUS_JUNK_FOLDER");
    AgentProcess agent(
        dir_, header() + roundtrip_target("cyrus-junk", "CYRUS_IMAPS_PORT", "implicit", "",
                                          "[targets.message.headers]\n" +
                                              cyrus("CYRUS_JUNK_HEADER") + " = \"yes\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, delivered("cyrus-junk", "junk")) >= 1; },
        15s);
    ASSERT_GE(value_of(text, delivered("cyrus-junk", "junk")), 1) << text << agent.log();
    EXPECT_EQ(count_between_runs(agent, {"cyrus-junk"}, [&] { return own_messages(junk_folder); }),
              0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("cyrus-junk", "roundtrip")), 0) << text;
    EXPECT_GE(value_of(text, R"(mailcanary_probe_failures_total{probe="roundtrip",reason="junk",)"
                             R"(target="cyrus-junk"})"),
              1)
        << text;
    EXPECT_NE(agent.log().find("folder=" + junk_folder), std::string::npos) << agent.log();
}

// idle = false: NOOP polling. The default cleanup flags the message \Deleted and removes it with
// UID EXPUNGE, never a plain EXPUNGE, which would take another client's flagged message too.
TEST_F(CyrusIntegration, PolledWithoutIdleAndExpungedByUid) {
    add_others_messages();
    AgentProcess agent(dir_,
                       header() + roundtrip_target("cyrus-polled", "CYRUS_IMAPS_PORT", "implicit",
                                                   "idle = false\n"
                                                   "poll_interval = \"100ms\"\n"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(
        [&](const std::string& t) { return value_of(t, delivered("cyrus-polled", "inbox")) >= 2; },
        15s);
    ASSERT_GE(value_of(text, delivered("cyrus-polled", "inbox")), 2) << text << agent.log();
    EXPECT_EQ(count_between_runs(agent, {"cyrus-polled"}, [&] { return own_messages("INBOX"); }),
              0);
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("cyrus-polled", "roundtrip")), 1) << text;
    EXPECT_NE(agent.log().find("mode=polling"), std::string::npos) << agent.log();
    EXPECT_EQ(agent.log().find("mode=idle"), std::string::npos) << agent.log();
    const std::string sessions = telemetry();
    EXPECT_TRUE(client_sent(sessions, "NOOP")) << sessions;
    EXPECT_FALSE(client_sent(sessions, "IDLE")) << sessions;
    // With CONDSTORE (Cyrus has it) the flag is set only if nobody changed the message since, and
    // not silently: the FETCH in the answer gives the sequence number its EXPUNGE will name.
    EXPECT_TRUE(client_sent(
        sessions, R"(UID STORE [0-9,:]+ \(UNCHANGEDSINCE [0-9]+\) \+FLAGS \(\\Deleted\))"))
        << sessions;
    EXPECT_TRUE(client_sent(sessions, "UID EXPUNGE [0-9,:]+")) << sessions;
    EXPECT_FALSE(client_sent(sessions, "EXPUNGE\r?\n")) << sessions;
    expect_others_messages_untouched();
}

// Debian's cyrus.conf starts no idled: IDLE is offered, but Cyrus then looks for new mail only
// every 60 s (imapidlepoll). The prompt checks (the default) find the message meanwhile.
TEST_F(CyrusIntegration, IdleWithoutIdledIsMeasuredByThePromptChecks) {
    AgentProcess agent(
        dir_, header() + roundtrip_target("cyrus-noidled", "CYRUS_IMAP_NOIDLED_PORT", "starttls"));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto count = series("mailcanary_roundtrip_seconds_count", "cyrus-noidled");
    const auto text =
        agent.wait_for([&](const std::string& t) { return value_of(t, count) >= 2; }, 15s);
    ASSERT_GE(value_of(text, count), 2) << text << agent.log();
    ASSERT_EQ(agent.stop(SIGTERM, 3s), 0);
    EXPECT_EQ(value_of(text, success_series("cyrus-noidled", "roundtrip")), 1) << text;
    EXPECT_NE(agent.log().find("mode=idle"), std::string::npos) << agent.log();
    EXPECT_LT(mean_roundtrip(text, "cyrus-noidled"), 1) << text;
    // The server did fall back to its 60 s polling for these sessions.
    EXPECT_NE(cyrus_log().find("Falling back to polling every 60 seconds"), std::string::npos)
        << cyrus_log();
}

TEST_F(CyrusIntegration, ImapProbeLogsInAndSelectsAndAWrongPasswordIsRejected) {
    const fs::path wrong = dir_ / "wrong.password";
    std::ofstream(wrong) << "not-the-password\n";
    const auto imap_target = [&](const std::string& name, const char* port_key,
                                 const std::string& tls, const std::string& mailbox,
                                 const std::string& password_file) {
        return target(name, port("MAILSTACK_SMTP_PORT"), "starttls",
                      "probes = [\"imap\"]\n[targets.imap]\nhost = \"" + cyrus("CYRUS_HOST") +
                          "\"\nport = " + cyrus(port_key) + "\ntls = \"" + tls +
                          "\"\nusername = \"" + cyrus("CYRUS_USER") + "\"\npassword_file = \"" +
                          password_file + "\"\nmailbox = \"" + mailbox +
                          "\"\n[targets.imap.tls_options]\nca_file = \"" + ca() + "\"\n");
    };
    const std::string password = cyrus("CYRUS_PASSWORD_FILE");
    AgentProcess agent(
        dir_,
        header() + imap_target("cyrus-starttls", "CYRUS_IMAP_PORT", "starttls", "INBOX", password) +
            imap_target("cyrus-imaps", "CYRUS_IMAPS_PORT", "implicit", cyrus("CYRUS_TRASH_FOLDER"),
                        password) +
            imap_target("cyrus-badlogin", "CYRUS_IMAPS_PORT", "implicit", "INBOX", wrong.string()));
    ASSERT_TRUE(agent.started()) << agent.log();
    const auto text = agent.wait_for(
        each_reported({"cyrus-starttls", "cyrus-imaps", "cyrus-badlogin"}, "imap"), 15s);
    for (const std::string name : {"cyrus-starttls", "cyrus-imaps"}) {
        SCOPED_TRACE(name);
        ASSERT_EQ(value_of(text, success_series(name, "imap")), 1) << text << agent.log();
        EXPECT_GE(value_of(text, "mailcanary_imap_mailbox_messages{target=\"" + name + "\"}"), 0)
            << text;
    }
    EXPECT_EQ(value_of(text, success_series("cyrus-badlogin", "imap")), 0) << text;
    EXPECT_GE(value_of(text, R"(mailcanary_probe_failures_total{probe="imap",)"
                             R"(reason="auth_rejected",target="cyrus-badlogin"})"),
              1)
        << text << http("GET", agent.url("/results?target=cyrus-badlogin&probe=imap")).body;
}

}  // namespace
}  // namespace mailcanary::test
