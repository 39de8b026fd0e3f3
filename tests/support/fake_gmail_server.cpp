#include "support/fake_gmail_server.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <ctime>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>  // before Boost: Boost 1.74's coroutine support needs it with g++ 12

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::size_t kMaxLineBytes = std::size_t{64} * 1024;

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// The next word of `rest` (up to a space), taken off it.
std::string next_word(std::string_view& rest) {
    const auto space = rest.find(' ');
    std::string word(rest.substr(0, space));
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
    return word;
}

// The next atom or quoted string of `rest`, unquoted, taken off it.
std::string next_astring(std::string_view& rest) {
    if (rest.empty() || rest.front() != '"') return next_word(rest);
    std::string out;
    std::size_t i = 1;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        out += rest[i];
    }
    rest.remove_prefix(std::min(rest.size(), i + 2));
    return out;
}

std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

// The header fields named in `names` (upper case), as the header block's lines, then CRLF.
std::string header_fields(std::string_view message, const std::vector<std::string>& names) {
    const auto end = message.find("\r\n\r\n");
    std::string_view header = message.substr(0, end == std::string_view::npos ? 0 : end + 2);
    std::string out;
    bool keeping = false;
    while (!header.empty()) {
        const auto line_end = header.find("\r\n");
        const std::string_view line = header.substr(0, line_end + 2);
        header.remove_prefix(line.size());
        if (line.front() != ' ' && line.front() != '\t') {
            const std::string name = upper(line.substr(0, line.find(':')));
            keeping = std::find(names.begin(), names.end(), name) != names.end();
        }
        if (keeping) out += line;
    }
    return out + "\r\n";
}

// Gmail's search matches words: a value holds `word` only as a whole run of letters and digits.
bool has_word(std::string_view value, std::string_view word) {
    const std::string wanted = upper(word);
    std::string current;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i < value.size() && std::isalnum(static_cast<unsigned char>(value[i]))) {
            current += static_cast<char>(std::toupper(static_cast<unsigned char>(value[i])));
            continue;
        }
        if (!current.empty() && current == wanted) return true;
        current.clear();
    }
    return false;
}

struct Entry {
    int message = 0;
    bool deleted = false;
};

struct Folder {
    std::string name;
    std::string attributes;  // "\HasNoChildren \Trash"
    std::uint32_t uid_validity = 0;
    std::uint32_t next_uid = 1;
    std::map<std::uint32_t, Entry> entries;  // by UID

    std::optional<std::uint32_t> uid_of(int message) const {
        for (const auto& [uid, entry] : entries) {
            if (entry.message == message) return uid;
        }
        return std::nullopt;
    }
};

struct Message {
    std::string text;
    std::string internal_date;
};

// UIDs of `folder` in `set` ("5", "3:7,9", "4:*"); "*" is the highest UID, and "n:*" holds it
// even when it is below n (RFC 9051 6.4.8).
std::vector<std::uint32_t> uids_in(const Folder& folder, std::string_view set) {
    const std::uint32_t highest = folder.entries.empty() ? 0 : folder.entries.rbegin()->first;
    const auto number = [&](std::string_view text) -> std::uint32_t {
        return text == "*" ? highest : static_cast<std::uint32_t>(std::stoul(std::string(text)));
    };
    std::set<std::uint32_t> out;
    while (!set.empty()) {
        const auto comma = set.find(',');
        const std::string_view item = set.substr(0, comma);
        const auto colon = item.find(':');
        std::uint32_t low = number(item.substr(0, colon));
        std::uint32_t high = colon == std::string_view::npos ? low : number(item.substr(colon + 1));
        if (low > high) std::swap(low, high);
        for (auto it = folder.entries.lower_bound(low);
             it != folder.entries.end() && it->first <= high; ++it) {
            out.insert(it->first);
        }
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
    }
    return {out.begin(), out.end()};
}

std::string uid_list(const std::vector<std::uint32_t>& uids) {
    std::string out;
    for (const auto uid : uids) out += (out.empty() ? "" : ",") + std::to_string(uid);
    return out;
}

}  // namespace

struct FakeGmailServer::Impl {
    class Connection;

    explicit Impl(FakeGmailOptions given);
    ~Impl();

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> serve(std::shared_ptr<Connection> connection);

    // Everything below is guarded by `mutex`.
    Folder* folder(std::string_view name);
    bool is_label(const Folder& folder) const;
    void add_to(Folder& folder, int message);
    void destroy(int message);
    // What Gmail does on an expunge from `folder`: a label comes off, a message in Trash or
    // Spam is deleted for good, and All Mail keeps it.
    void expunge(Folder& folder, std::uint32_t uid);
    // COPY (and, with `move`, MOVE) of `message` from `source` to `destination`.
    void copy(Folder& source, Folder& destination, int message, bool move);

    FakeGmailOptions options;
    std::string inbox = "INBOX";
    std::string all_mail;
    std::string spam;
    std::string sent;
    mutable std::mutex mutex;
    std::vector<Folder> folders;
    std::map<int, Message> messages;
    int next_message = 1;
    std::vector<std::string> lines;
    bool refusing = false;
    int connections = 0;
    int refused = 0;

    asio::io_context io_context;
    tcp::acceptor acceptor;
    const std::uint16_t port;
    std::vector<std::weak_ptr<Connection>> live_connections;
    std::thread thread;
};

class FakeGmailServer::Impl::Connection {
  public:
    Connection(Impl& server, tcp::socket socket) : server_(server), socket_(std::move(socket)) {}

    asio::awaitable<void> run();
    void close() {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

  private:
    asio::awaitable<std::string> read_line();
    // The reply to one command line (under the server's lock); empty for IDLE's continuation.
    std::string handle(const std::string& tag, const std::string& command, std::string_view rest);
    std::string capability() const;
    std::string list() const;
    std::string select(const std::string& tag, std::string_view rest);
    std::string fetch(Folder& folder, std::string_view set, std::string_view items);
    std::string store(Folder& folder, std::string_view set, std::string_view rest);
    std::string copy(const std::string& tag, Folder& folder, std::string_view rest, bool move);
    std::string search(const std::string& tag, Folder& folder, std::string_view rest);
    // Tells the client what changed in its folder since it last heard: EXPUNGE for each message
    // gone (by its sequence number then), EXISTS when the count changed.
    std::string updates();
    std::uint32_t sequence_of(std::uint32_t uid) const;

    Impl& server_;
    tcp::socket socket_;
    std::string buffer_;
    std::optional<std::string> selected_;
    std::vector<std::uint32_t> view_;  // the UIDs the client knows, in sequence order
};

asio::awaitable<std::string> FakeGmailServer::Impl::Connection::read_line() {
    auto buffer = asio::dynamic_buffer(buffer_, kMaxLineBytes);
    const std::size_t length =
        co_await asio::async_read_until(socket_, buffer, "\r\n", asio::use_awaitable);
    std::string line = buffer_.substr(0, length - 2);
    buffer_.erase(0, length);
    co_return line;
}

asio::awaitable<void> FakeGmailServer::Impl::Connection::run() {
    bool refuse = false;
    {
        std::lock_guard lock(server_.mutex);
        ++server_.connections;
        refuse = server_.refusing;
        if (refuse) ++server_.refused;
    }
    if (refuse) {
        co_await asio::async_write(socket_, asio::buffer(std::string_view("* BYE Restarting\r\n")),
                                   asio::use_awaitable);
        co_return;
    }
    co_await asio::async_write(
        socket_,
        asio::buffer(std::string_view("* OK Gimap ready for requests from 127.0.0.1 fake\r\n")),
        asio::use_awaitable);
    for (;;) {
        const std::string line = co_await read_line();
        std::string_view rest = line;
        const std::string tag = next_word(rest);
        const std::string command = upper(next_word(rest));
        std::string reply;
        {
            std::lock_guard lock(server_.mutex);
            server_.lines.push_back(line);
            reply = handle(tag, command, rest);
        }
        co_await asio::async_write(socket_, asio::buffer(reply), asio::use_awaitable);
        if (command == "LOGOUT") co_return;
        if (command != "IDLE") continue;
        const std::string done = co_await read_line();
        {
            std::lock_guard lock(server_.mutex);
            server_.lines.push_back(done);
            reply = updates() + tag +
                    (upper(done) == "DONE" ? " OK IDLE terminated (Success)\r\n"
                                           : " BAD expected DONE\r\n");
        }
        co_await asio::async_write(socket_, asio::buffer(reply), asio::use_awaitable);
    }
}

std::string FakeGmailServer::Impl::Connection::capability() const {
    // What Gmail lists, less what is not emulated (COMPRESS, CONDSTORE, ESEARCH, QUOTA, ...).
    return std::string("IMAP4rev1 UNSELECT IDLE NAMESPACE ID CHILDREN") +
           (server_.options.gmail_extensions ? " X-GM-EXT-1" : "") + " UIDPLUS" +
           (server_.options.move ? " MOVE" : "") + " SPECIAL-USE";
}

std::string FakeGmailServer::Impl::Connection::handle(const std::string& tag,
                                                      const std::string& command,
                                                      std::string_view rest) {
    if (command == "CAPABILITY")
        return "* CAPABILITY " + capability() + "\r\n" + tag + " OK Success\r\n";
    if (command == "LOGIN") {
        return "* CAPABILITY " + capability() + "\r\n" + tag +
               " OK probe authenticated (Success)\r\n";
    }
    if (command == "LOGOUT")
        return "* BYE LOGOUT Requested\r\n" + tag + " OK 73 good day (Success)\r\n";
    if (command == "LIST") return list() + tag + " OK Success\r\n";
    if (command == "SELECT") return select(tag, rest);
    if (command == "NOOP") return updates() + tag + " OK Success\r\n";
    if (command == "IDLE") return selected_ ? "+ idling\r\n" : tag + " BAD no folder selected\r\n";
    Folder* folder = selected_ ? server_.folder(*selected_) : nullptr;
    if (folder == nullptr) return tag + " BAD " + command + " without a selected folder\r\n";
    const std::string kind = command == "UID" ? upper(next_word(rest)) : command;
    if (command != "UID" && kind != "EXPUNGE")
        return tag + " BAD only UID commands are emulated\r\n";
    std::string reply = updates();
    if (kind == "FETCH") {
        const std::string set = next_word(rest);
        reply += fetch(*folder, set, rest) + tag + " OK Success\r\n";
    } else if (kind == "STORE") {
        const std::string set = next_word(rest);
        reply += store(*folder, set, rest);
        reply += updates() + tag + " OK Success\r\n";
    } else if (kind == "EXPUNGE") {
        const auto uids =
            command == "UID" ? uids_in(*folder, next_word(rest)) : uids_in(*folder, "1:*");
        for (const auto uid : uids) {
            if (folder->entries.contains(uid) && folder->entries.at(uid).deleted) {
                server_.expunge(*folder, uid);
            }
        }
        reply += updates() + tag + " OK Success\r\n";
    } else if (kind == "COPY" || (kind == "MOVE" && server_.options.move)) {
        reply += copy(tag, *folder, rest, kind == "MOVE");
    } else if (kind == "SEARCH") {
        reply += search(tag, *folder, rest);
    } else {
        reply += tag + " BAD Unknown command\r\n";
    }
    return reply;
}

std::string FakeGmailServer::Impl::Connection::list() const {
    std::string out =
        "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n* LIST (\\HasChildren \\Noselect) \"/\" " +
        quoted(server_.options.prefix) + "\r\n";
    for (const Folder& folder : server_.folders) {
        if (folder.name == server_.inbox) continue;
        out += "* LIST (" + folder.attributes + ") \"/\" " + quoted(folder.name) + "\r\n";
    }
    return out;
}

std::string FakeGmailServer::Impl::Connection::select(const std::string& tag,
                                                      std::string_view rest) {
    const std::string name = next_astring(rest);
    const Folder* folder = server_.folder(name);
    selected_.reset();
    view_.clear();
    if (folder == nullptr)
        return tag + " NO [NONEXISTENT] Unknown Mailbox: " + name + " (Failure)\r\n";
    selected_ = folder->name;
    for (const auto& [uid, entry] : folder->entries) view_.push_back(uid);
    return "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n"
           "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing "
           "$Phishing \\*)] Flags permitted.\r\n"
           "* OK [UIDVALIDITY " +
           std::to_string(folder->uid_validity) + "] UIDs valid.\r\n* " +
           std::to_string(view_.size()) + " EXISTS\r\n* 0 RECENT\r\n* OK [UIDNEXT " +
           std::to_string(folder->next_uid) + "] Predicted next UID.\r\n" + tag +
           " OK [READ-WRITE] " + name + " selected. (Success)\r\n";
}

std::uint32_t FakeGmailServer::Impl::Connection::sequence_of(std::uint32_t uid) const {
    return static_cast<std::uint32_t>(std::find(view_.begin(), view_.end(), uid) - view_.begin()) +
           1;
}

std::string FakeGmailServer::Impl::Connection::fetch(Folder& folder, std::string_view set,
                                                     std::string_view items) {
    std::vector<std::string> fields;
    if (const auto at = items.find("HEADER.FIELDS ("); at != std::string_view::npos) {
        std::string_view names = items.substr(at + 15);
        names = names.substr(0, names.find(')'));
        while (!names.empty()) fields.push_back(upper(next_word(names)));
    }
    std::string out;
    for (const auto uid : uids_in(folder, set)) {
        const Entry& entry = folder.entries.at(uid);
        const Message& message = server_.messages.at(entry.message);
        out += "* " + std::to_string(sequence_of(uid)) + " FETCH (UID " + std::to_string(uid);
        if (items.find("INTERNALDATE") != std::string_view::npos) {
            out += " INTERNALDATE \"" + message.internal_date + "\"";
        }
        if (items.find("FLAGS") != std::string_view::npos &&
            items.find("HEADER.FIELDS") == std::string_view::npos) {
            out += std::string(" FLAGS (") + (entry.deleted ? "\\Deleted" : "") + ")";
        }
        if (!fields.empty()) {
            std::string names;
            for (const auto& name : fields) names += (names.empty() ? "" : " ") + name;
            const std::string block = header_fields(message.text, fields);
            out += " BODY[HEADER.FIELDS (" + names + ")] {" + std::to_string(block.size()) +
                   "}\r\n" + block;
        }
        out += ")\r\n";
    }
    return out;
}

std::string FakeGmailServer::Impl::Connection::store(Folder& folder, std::string_view set,
                                                     std::string_view rest) {
    const bool deleting = rest.find("\\Deleted") != std::string_view::npos;
    const bool adding = rest.starts_with("+FLAGS");
    std::string out;
    for (const auto uid : uids_in(folder, set)) {
        Entry& entry = folder.entries.at(uid);
        if (deleting) entry.deleted = adding;
        out += "* " + std::to_string(sequence_of(uid)) + " FETCH (UID " + std::to_string(uid) +
               " FLAGS (" + (entry.deleted ? "\\Deleted" : "") + "))\r\n";
        if (entry.deleted && server_.options.auto_expunge) server_.expunge(folder, uid);
    }
    return out;
}

std::string FakeGmailServer::Impl::Connection::copy(const std::string& tag, Folder& folder,
                                                    std::string_view rest, bool move) {
    const std::string set = next_word(rest);
    Folder* destination = server_.folder(next_astring(rest));
    if (destination == nullptr) return tag + " NO [TRYCREATE] No folder by that name (Failure)\r\n";
    if (destination->name == server_.spam || folder.name == server_.options.trash ||
        (folder.name == server_.spam && destination->name != server_.options.trash)) {
        return tag + " NO [CANNOT] not emulated\r\n";
    }
    std::vector<std::uint32_t> sources = uids_in(folder, set);
    std::vector<std::uint32_t> copies;
    for (const auto uid : sources) {
        const int message = folder.entries.at(uid).message;
        server_.copy(folder, *destination, message, move);
        copies.push_back(destination->uid_of(message).value_or(0));
    }
    if (sources.empty()) return tag + " OK No messages (Success)\r\n";
    const std::string copyuid = "[COPYUID " + std::to_string(destination->uid_validity) + " " +
                                uid_list(sources) + " " + uid_list(copies) + "]";
    if (!move) return tag + " OK " + copyuid + " (Success)\r\n";
    return "* OK " + copyuid + " Moved\r\n" + updates() + tag + " OK Success\r\n";
}

std::string FakeGmailServer::Impl::Connection::search(const std::string& tag, Folder& folder,
                                                      std::string_view rest) {
    if (upper(next_word(rest)) != "HEADER") return tag + " BAD only HEADER search is emulated\r\n";
    const std::string field = upper(next_astring(rest));
    const std::string word = next_astring(rest);
    std::string out = "* SEARCH";
    for (const auto& [uid, entry] : folder.entries) {
        const std::string block = header_fields(server_.messages.at(entry.message).text, {field});
        if (has_word(block.substr(std::min(block.size(), field.size() + 1)), word)) {
            out += " " + std::to_string(uid);
        }
    }
    return out + "\r\n" + tag + " OK SEARCH completed (Success)\r\n";
}

std::string FakeGmailServer::Impl::Connection::updates() {
    const Folder* folder = selected_ ? server_.folder(*selected_) : nullptr;
    if (folder == nullptr) return "";
    std::string out;
    for (std::size_t i = 0; i < view_.size();) {
        if (folder->entries.contains(view_[i])) {
            ++i;
            continue;
        }
        out += "* " + std::to_string(i + 1) + " EXPUNGE\r\n";
        view_.erase(view_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    const std::uint32_t known = view_.empty() ? 0 : view_.back();
    const std::size_t before = view_.size();
    for (auto it = folder->entries.upper_bound(known); it != folder->entries.end(); ++it) {
        view_.push_back(it->first);
    }
    if (view_.size() != before) out += "* " + std::to_string(view_.size()) + " EXISTS\r\n";
    return out;
}

FakeGmailServer::Impl::Impl(FakeGmailOptions given)
    : options(std::move(given)),
      all_mail(options.prefix + "/All Mail"),
      spam(options.prefix + "/Spam"),
      sent(options.prefix + "/Sent Mail"),
      acceptor(io_context, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
      port(acceptor.local_endpoint().port()) {
    const std::vector<std::pair<std::string, std::string>> listed{
        {inbox, "\\HasNoChildren"},
        {all_mail, "\\All \\HasNoChildren"},
        {options.prefix + "/Drafts", "\\Drafts \\HasNoChildren"},
        {options.prefix + "/Important", "\\HasNoChildren \\Important"},
        {sent, "\\HasNoChildren \\Sent"},
        {spam, "\\HasNoChildren \\Junk"},
        {options.prefix + "/Starred", "\\Flagged \\HasNoChildren"},
        {options.trash, "\\HasNoChildren \\Trash"}};
    std::uint32_t validity = 600;
    for (const auto& [name, attributes] : listed) {
        folders.push_back(Folder{name, attributes, ++validity, 1, {}});
    }
    asio::co_spawn(io_context, accept_loop(), asio::detached);
    thread = std::thread([this] { io_context.run(); });
}

FakeGmailServer::Impl::~Impl() {
    asio::post(io_context, [this] {
        boost::system::error_code ignored;
        acceptor.close(ignored);
        for (const auto& weak : live_connections) {
            if (const auto connection = weak.lock()) connection->close();
        }
    });
    thread.join();
}

asio::awaitable<void> FakeGmailServer::Impl::accept_loop() {
    for (;;) {
        boost::system::error_code error;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
        if (error) co_return;
        socket.set_option(tcp::no_delay(true), error);
        auto connection = std::make_shared<Connection>(*this, std::move(socket));
        std::erase_if(live_connections, [](const auto& weak) { return weak.expired(); });
        live_connections.push_back(connection);
        asio::co_spawn(io_context, serve(std::move(connection)), asio::detached);
    }
}

asio::awaitable<void> FakeGmailServer::Impl::serve(std::shared_ptr<Connection> connection) {
    try {
        co_await connection->run();
    } catch (const boost::system::system_error&) {
        // The client left, or the server is stopping.
    }
    connection->close();
}

Folder* FakeGmailServer::Impl::folder(std::string_view name) {
    for (Folder& each : folders) {
        if (each.name == name || (each.name == inbox && upper(name) == inbox)) return &each;
    }
    return nullptr;
}

bool FakeGmailServer::Impl::is_label(const Folder& folder) const {
    return folder.name != all_mail && folder.name != spam && folder.name != options.trash;
}

void FakeGmailServer::Impl::add_to(Folder& folder, int message) {
    if (!folder.uid_of(message)) folder.entries[folder.next_uid++] = Entry{message, false};
}

void FakeGmailServer::Impl::destroy(int message) {
    for (Folder& each : folders) {
        if (const auto uid = each.uid_of(message)) each.entries.erase(*uid);
    }
    messages.erase(message);
}

void FakeGmailServer::Impl::expunge(Folder& from, std::uint32_t uid) {
    const int message = from.entries.at(uid).message;
    if (from.name == all_mail) {
        from.entries.at(uid).deleted = false;  // sweetrb/apple-mail-mcp #88: it stays
    } else if (is_label(from)) {
        from.entries.erase(uid);  // archived: still in All Mail
    } else {
        destroy(message);
    }
}

void FakeGmailServer::Impl::copy(Folder& source, Folder& destination, int message, bool move) {
    if (&destination == folder(options.trash)) {
        // In Trash, a message leaves All Mail; a MOVE takes every other label off too (and
        // takes it out of Spam).
        Folder& everything = *folder(all_mail);
        if (const auto uid = everything.uid_of(message)) everything.entries.erase(*uid);
        if (move) {
            for (Folder& each : folders) {
                if (is_label(each) || each.name == spam) {
                    if (const auto uid = each.uid_of(message)) each.entries.erase(*uid);
                }
            }
        }
        add_to(destination, message);
        return;
    }
    if (is_label(destination)) add_to(destination, message);
    if (move && is_label(source)) {
        if (const auto uid = source.uid_of(message)) source.entries.erase(*uid);
    }
}

FakeGmailServer::FakeGmailServer(FakeGmailOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

FakeGmailServer::~FakeGmailServer() = default;

std::uint16_t FakeGmailServer::port() const { return impl_->port; }
std::string FakeGmailServer::all_mail() const { return impl_->all_mail; }
std::string FakeGmailServer::spam() const { return impl_->spam; }
std::string FakeGmailServer::sent() const { return impl_->sent; }
const std::string& FakeGmailServer::trash() const { return impl_->options.trash; }

void FakeGmailServer::deliver(std::string message, const std::string& folder_name) {
    std::lock_guard lock(impl_->mutex);
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char date[40];
    std::strftime(date, sizeof date, "%d-%b-%Y %H:%M:%S +0000", &utc);
    const int id = impl_->next_message++;
    impl_->messages[id] = Message{std::move(message), date};
    Folder* folder = impl_->folder(folder_name);
    if (folder == nullptr) throw std::invalid_argument("no folder " + folder_name);
    if (impl_->is_label(*folder)) impl_->add_to(*impl_->folder(impl_->all_mail), id);
    impl_->add_to(*folder, id);
}

void FakeGmailServer::add_label(std::string_view text, const std::string& folder_name) {
    std::lock_guard lock(impl_->mutex);
    Folder* folder = impl_->folder(folder_name);
    for (const auto& [id, message] : impl_->messages) {
        if (message.text.find(text) != std::string::npos) impl_->add_to(*folder, id);
    }
}

std::vector<std::string> FakeGmailServer::folders_holding(std::string_view text) const {
    std::lock_guard lock(impl_->mutex);
    std::vector<std::string> found;
    for (const Folder& folder : impl_->folders) {
        for (const auto& [uid, entry] : folder.entries) {
            if (impl_->messages.at(entry.message).text.find(text) != std::string::npos) {
                found.push_back(folder.name);
            }
        }
    }
    std::sort(found.begin(), found.end());
    return found;
}

std::size_t FakeGmailServer::messages() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->messages.size();
}

std::vector<std::string> FakeGmailServer::received_lines() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->lines;
}

void FakeGmailServer::drop_connections() {
    std::promise<void> dropped;
    asio::post(impl_->io_context, [this, &dropped] {
        for (const auto& weak : impl_->live_connections) {
            if (const auto connection = weak.lock()) connection->close();
        }
        dropped.set_value();
    });
    dropped.get_future().wait();
}

void FakeGmailServer::refuse_connections(bool refusing) {
    std::lock_guard lock(impl_->mutex);
    impl_->refusing = refusing;
}

int FakeGmailServer::connections() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections;
}

int FakeGmailServer::refused() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->refused;
}

}  // namespace mailcanary::test
