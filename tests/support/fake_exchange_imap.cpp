// What Exchange Online says, and where it was seen:
// - greeting, capabilities before login, "NO LOGIN failed.": tests/support/provider_transcripts.hpp
//   (imapsync/imapsync #317, mjs/imapclient #602, jstedfast/MailKit #483);
// - capabilities after login (MOVE aside), "LOGIN completed.", "SELECT completed.", IDLE's
//   "+ IDLE accepted, awaiting DONE command.", "BAD Command Argument Error. 11", the BYE on
//   LOGOUT: jstedfast/MailKit #1494 and #1135, mscdex/node-imap #523;
// - folders without special-use flags, named "Junk Email", "Deleted Items", "Sent Items":
//   imapsync's Office 365 FAQ and issue #317, MailKit #1135;
// - throttling: "NO Request is throttled. Suggested Backoff Time: 299609 milliseconds"
//   (imapsync/imapsync #198, to APPEND; ikvk/imap_tools #135, to FETCH) and "BAD Request is
//   throttled. Suggested Backoff Time: 89117 milliseconds" followed by "* BYE Connection
//   closed. 14" (simonrob/email-oauth2-proxy #191). Which form a throttled login gets is not in
//   any public transcript: this fake answers it with the NO form.
#include "support/fake_exchange_imap.hpp"

#include <utility>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "support/provider_transcripts.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::uint32_t kUidValidity = 14;

std::string upper(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return text;
}

// Splits "a b \"c d\" (e f)" into words, quoted strings unquoted, parenthesised groups whole.
std::vector<std::string> arguments(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        if (text[at] == ' ') {
            ++at;
            continue;
        }
        std::string word;
        if (text[at] == '"') {
            for (++at; at < text.size() && text[at] != '"'; ++at) {
                if (text[at] == '\\' && at + 1 < text.size()) ++at;
                word += text[at];
            }
            ++at;
        } else {
            int depth = 0;
            for (; at < text.size() && (depth > 0 || text[at] != ' '); ++at) {
                if (text[at] == '(' || text[at] == '[') ++depth;
                if (text[at] == ')' || text[at] == ']') --depth;
                word += text[at];
            }
        }
        out.push_back(word);
    }
    return out;
}

// Whether `uid` is in the UID set `set` ("5", "3:7,9", "6:*"), `highest` standing for "*".
bool in_set(const std::string& set, std::uint32_t uid, std::uint32_t highest) {
    std::stringstream items(set);
    std::string item;
    const auto number = [&](const std::string& text) {
        return text == "*" ? highest : static_cast<std::uint32_t>(std::stoul(text));
    };
    while (std::getline(items, item, ',')) {
        const auto colon = item.find(':');
        std::uint32_t low = number(item.substr(0, colon));
        std::uint32_t high = colon == std::string::npos ? low : number(item.substr(colon + 1));
        if (low > high) std::swap(low, high);
        if (uid >= low && uid <= high) return true;
    }
    return false;
}

// The lines of a header block whose field names are among `names` (upper case), then CRLF.
std::string header_fields(const std::string& headers, const std::vector<std::string>& names) {
    std::string out;
    std::stringstream lines(headers);
    std::string line;
    while (std::getline(lines, line)) {
        const std::string name = upper(line.substr(0, line.find(':')));
        if (std::find(names.begin(), names.end(), name) != names.end()) out += line + "\n";
    }
    return out + "\r\n";
}

}  // namespace

struct FakeExchangeImap::Impl {
    struct Message {
        std::uint32_t uid;
        std::string headers;
        bool deleted = false;
    };
    struct Folder {
        std::uint32_t next_uid = 1;
        std::vector<Message> messages;
    };

    explicit Impl(Options server_options)
        : options(std::move(server_options)),
          acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
          listening_port(acceptor.local_endpoint().port()) {
        for (const char* name : {"INBOX", "Archive", "Deleted Items", "Drafts", "Junk Email",
                                 "Outbox", "Sent Items"}) {
            folders[name];
        }
        asio::co_spawn(io, accept(), asio::detached);
        thread = std::thread([this] { io.run(); });
    }
    ~Impl() {
        asio::post(io, [this] {
            boost::system::error_code ignored;
            acceptor.close(ignored);
            for (tcp::socket* socket : sockets) socket->close(ignored);
        });
        thread.join();
    }

    asio::awaitable<void> accept() {
        while (true) {
            boost::system::error_code error;
            tcp::socket socket =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
            if (error) co_return;
            asio::co_spawn(io, serve(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        sockets.insert(&socket);
        {
            const std::lock_guard lock(mutex);
            peak = std::max(peak, ++open);
        }
        std::string buffer;
        std::string selected;
        std::string idle_tag;
        bool logged_in = false;
        bool open_session = true;
        const auto say = [&](const std::string& text) {
            boost::system::error_code ignored;
            asio::write(socket, asio::buffer(text), ignored);
        };
        say(providers::kMicrosoftImapGreeting);
        while (open_session) {
            boost::system::error_code error;
            const std::size_t length =
                co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n",
                                                asio::redirect_error(asio::use_awaitable, error));
            if (error) break;
            const std::string line = buffer.substr(0, length - 2);
            buffer.erase(0, length);
            const std::lock_guard lock(mutex);
            if (!idle_tag.empty()) {
                lines.push_back(line);
                if (upper(line) == "DONE")
                    say(std::exchange(idle_tag, "") + " OK IDLE completed.\r\n");
                continue;
            }
            const auto words = arguments(line);
            const std::string tag = words.empty() ? "*" : words[0];
            std::string command = words.size() > 1 ? upper(words[1]) : "";
            std::size_t first_argument = 2;
            if (command == "UID" && words.size() > 2) {
                command += " " + upper(words[2]);
                first_argument = 3;
            }
            const std::vector<std::string> args(
                words.begin() + static_cast<std::ptrdiff_t>(std::min(first_argument, words.size())),
                words.end());
            lines.push_back(command == "LOGIN" && args.size() == 2
                                ? tag + " LOGIN " + args[0] + " <password>"
                                : line);
            if (command == "LOGIN") {
                logins.push_back(Clock::now());
                if (throttled_logins > 0) {
                    --throttled_logins;
                    say(tag + " NO Request is throttled. Suggested Backoff Time: " +
                        std::to_string(hint_ms) + " milliseconds\r\n");
                    continue;
                }
                logged_in =
                    args.size() == 2 && args[0] == options.username && args[1] == options.password;
                say(tag + (logged_in ? " OK LOGIN completed.\r\n" : " NO LOGIN failed.\r\n"));
                continue;
            }
            if (command == "LOGOUT") {
                say("* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n" + tag +
                    " OK LOGOUT completed.\r\n");
                break;
            }
            if (command == "CAPABILITY") {
                say(logged_in ? capabilities_after_login() : providers::kMicrosoftImapCapability);
                say(tag + " OK CAPABILITY completed.\r\n");
                continue;
            }
            if (!logged_in) {
                say(tag + " BAD Command received in Invalid state.\r\n");
                continue;
            }
            if (throttled_commands > 0) {
                --throttled_commands;
                say(tag + " BAD Request is throttled. Suggested Backoff Time: " +
                    std::to_string(hint_ms) + " milliseconds\r\n* BYE Connection closed. 14\r\n");
                break;
            }
            say(answer(tag, command, args, selected, idle_tag));
        }
        sockets.erase(&socket);
        const std::lock_guard lock(mutex);
        --open;
    }

    std::string capabilities_after_login() const {
        return std::string(
                   "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ") +
               (options.offer_move ? "MOVE " : "") +
               "ID UNSELECT CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE "
               "CHILDREN IDLE NAMESPACE LITERAL+\r\n";
    }

    // A logged-in session's command; `selected` and `idle_tag` are the session's.
    std::string answer(const std::string& tag, const std::string& command,
                       const std::vector<std::string>& args, std::string& selected,
                       std::string& idle_tag) {
        std::string bad = tag + " BAD Command Argument Error. 11\r\n";
        if (command == "NOOP") return tag + " OK NOOP completed.\r\n";
        if (command == "LIST") {
            std::string out;
            for (const auto& [name, folder] : folders) {
                out += "* LIST (\\HasNoChildren) \"/\" " +
                       (name.find(' ') == std::string::npos ? name : "\"" + name + "\"") + "\r\n";
            }
            return out + tag + " OK LIST completed.\r\n";
        }
        if (command == "SELECT" && !args.empty()) {
            const auto found = folders.find(args[0]);
            if (found == folders.end()) {
                return tag + " NO The requested item could not be found.\r\n";
            }
            selected = args[0];
            const Folder& folder = found->second;
            return "* " + std::to_string(folder.messages.size()) +
                   " EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted "
                   "\\Draft $MDNSent)\r\n* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged "
                   "\\Deleted \\Draft $MDNSent)] Permanent flags\r\n* OK [UIDVALIDITY " +
                   std::to_string(kUidValidity) + "] UIDVALIDITY value\r\n* OK [UIDNEXT " +
                   std::to_string(folder.next_uid) + "] The next unique identifier value\r\n" +
                   tag + " OK [READ-WRITE] SELECT completed.\r\n";
        }
        if (command == "IDLE") {
            idle_tag = tag;
            return "+ IDLE accepted, awaiting DONE command.\r\n";
        }
        if (selected.empty()) return bad;
        Folder& folder = folders[selected];
        const std::uint32_t highest = folder.messages.empty() ? 0 : folder.messages.back().uid;
        const auto each_in = [&](const std::string& set, auto&& act) {
            for (std::size_t i = 0; i < folder.messages.size(); ++i) {
                if (in_set(set, folder.messages[i].uid, highest)) act(i + 1, folder.messages[i]);
            }
        };
        if (command == "UID FETCH" && args.size() >= 2) {
            // Only what the agent asks for: UID, INTERNALDATE and header fields.
            const std::string items = upper(args[1]);
            const auto fields_at = items.find("HEADER.FIELDS (");
            if (fields_at == std::string::npos) return bad;
            const std::string field_list =
                items.substr(fields_at + 15, items.find(')', fields_at) - fields_at - 15);
            std::vector<std::string> names;
            std::stringstream fields(field_list);
            for (std::string name; fields >> name;) names.push_back(name);
            const bool dated = items.find("INTERNALDATE") != std::string::npos;
            std::string out;
            each_in(args[0], [&](std::size_t sequence, const Message& message) {
                const std::string block = header_fields(message.headers, names);
                out += "* " + std::to_string(sequence) + " FETCH (UID " +
                       std::to_string(message.uid) +
                       (dated ? " INTERNALDATE \"29-Nov-2026 09:00:01 +0000\"" : "") +
                       " BODY[HEADER.FIELDS (" + field_list + ")] {" +
                       std::to_string(block.size()) + "}\r\n" + block + ")\r\n";
            });
            return out + tag + " OK FETCH completed.\r\n";
        }
        if (command == "UID STORE" && args.size() >= 3 && upper(args[1]) == "+FLAGS") {
            std::string out;
            each_in(args[0], [&](std::size_t sequence, Message& message) {
                message.deleted = true;
                out += "* " + std::to_string(sequence) + " FETCH (FLAGS (\\Deleted) UID " +
                       std::to_string(message.uid) + ")\r\n";
            });
            return out + tag + " OK STORE completed.\r\n";
        }
        if ((command == "UID COPY" || (command == "UID MOVE" && options.offer_move)) &&
            args.size() >= 2) {
            const auto target = folders.find(args[1]);
            if (target == folders.end()) {
                return tag + " NO [TRYCREATE] The requested item could not be found.\r\n";
            }
            std::string source_uids;
            std::string target_uids;
            each_in(args[0], [&](std::size_t /*sequence*/, Message& message) {
                source_uids += (source_uids.empty() ? "" : ",") + std::to_string(message.uid);
                const std::uint32_t uid = target->second.next_uid++;
                target_uids += (target_uids.empty() ? "" : ",") + std::to_string(uid);
                target->second.messages.push_back({uid, message.headers});
                if (command == "UID MOVE") message.deleted = true;
            });
            std::string out = tag + " OK [COPYUID " + std::to_string(kUidValidity) + " " +
                              source_uids + " " + target_uids + "] " +
                              (command == "UID MOVE" ? "MOVE" : "COPY") + " completed.\r\n";
            if (command == "UID MOVE") out = expunge(folder, args[0], highest) + out;
            return out;
        }
        if (command == "UID EXPUNGE" && !args.empty()) {
            return expunge(folder, args[0], highest) + tag + " OK EXPUNGE completed.\r\n";
        }
        return bad;
    }

    // Removes the messages of `set` flagged \Deleted; their EXPUNGE responses.
    static std::string expunge(Folder& folder, const std::string& set, std::uint32_t highest) {
        std::string out;
        for (std::size_t i = 0; i < folder.messages.size();) {
            if (folder.messages[i].deleted && in_set(set, folder.messages[i].uid, highest)) {
                out += "* " + std::to_string(i + 1) + " EXPUNGE\r\n";
                folder.messages.erase(folder.messages.begin() + static_cast<std::ptrdiff_t>(i));
            } else {
                ++i;
            }
        }
        return out;
    }

    Options options;
    asio::io_context io;
    tcp::acceptor acceptor;
    const std::uint16_t listening_port;
    std::set<tcp::socket*> sockets;  // the server thread's only
    std::thread thread;

    mutable std::mutex mutex;  // guards what follows
    std::map<std::string, Folder> folders;
    int throttled_logins = 0;
    int throttled_commands = 0;
    int hint_ms = 0;
    std::vector<std::string> lines;
    std::vector<Clock::time_point> logins;
    int open = 0;
    int peak = 0;
};

FakeExchangeImap::FakeExchangeImap(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeExchangeImap::~FakeExchangeImap() = default;

std::uint16_t FakeExchangeImap::port() const { return impl_->listening_port; }

void FakeExchangeImap::deliver(const std::string& folder, const std::string& headers) {
    const std::lock_guard lock(impl_->mutex);
    Impl::Folder& into = impl_->folders[folder];
    into.messages.push_back({into.next_uid++, headers});
}

std::vector<std::string> FakeExchangeImap::messages_in(const std::string& folder) const {
    const std::lock_guard lock(impl_->mutex);
    std::vector<std::string> out;
    for (const auto& message : impl_->folders[folder].messages) out.push_back(message.headers);
    return out;
}

void FakeExchangeImap::throttle_logins(int count, int hint_ms) {
    const std::lock_guard lock(impl_->mutex);
    impl_->throttled_logins = count;
    impl_->hint_ms = hint_ms;
}

void FakeExchangeImap::throttle_commands(int count, int hint_ms) {
    const std::lock_guard lock(impl_->mutex);
    impl_->throttled_commands = count;
    impl_->hint_ms = hint_ms;
}

std::vector<std::string> FakeExchangeImap::received_lines() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->lines;
}

std::vector<FakeExchangeImap::Clock::time_point> FakeExchangeImap::login_times() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->logins;
}

int FakeExchangeImap::peak_sessions() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->peak;
}

}  // namespace mailcanary::test
