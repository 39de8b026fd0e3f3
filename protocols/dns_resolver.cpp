#include "protocols/dns_resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "common/duration.hpp"

namespace mailcanary {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr int kMostAddresses = 64;  // per answer; more than any mail host has

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

std::string_view type_name(int type) {
    switch (type) {
        case ns_t_a:
            return "A";
        case ns_t_aaaa:
            return "AAAA";
        default:
            return "MX";
    }
}

// What the server (or its silence) said, as an operator reads it in a DNS tool.
std::string status_name(int status) {
    switch (status) {
        case ARES_ENOTFOUND:
            return "NXDOMAIN";
        case ARES_ENODATA:
            return "NODATA";
        case ARES_ESERVFAIL:
            return "SERVFAIL";
        case ARES_EREFUSED:
            return "REFUSED";
        case ARES_ETIMEOUT:
            return "timeout";
        default:
            return ares_strerror(status);
    }
}

// Worth asking the next server: it may know what this one could not say.
bool try_next_server(int status) {
    return status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA &&
           status != ARES_EDESTRUCTION && status != ARES_ECANCELLED;
}

void initialise_library() {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

// The least TTL of the answer section's records of `type` in a DNS message (0 when it has none
// or is cut short): c-ares 1.18's MX parser drops the TTLs.
int least_ttl(const unsigned char* reply, int length, int type) {
    constexpr int kHeader = 12;
    constexpr int kRecordFixed = 10;  // type, class, TTL, data length
    if (length < kHeader) return 0;
    const auto u16 = [reply](int at) { return (reply[at] << 8) | reply[at + 1]; };
    int at = kHeader;
    const auto skip_name = [&] {
        char* name = nullptr;
        long used = 0;
        if (ares_expand_name(reply + at, reply, length, &name, &used) != ARES_SUCCESS) return false;
        ares_free_string(name);
        at += static_cast<int>(used);
        return true;
    };
    for (int question = u16(4); question > 0; --question) {
        if (!skip_name() || at + 4 > length) return 0;
        at += 4;  // type, class
    }
    std::optional<std::uint32_t> least;
    for (int record = u16(6); record > 0; --record) {
        if (!skip_name() || at + kRecordFixed > length) break;
        const std::uint32_t ttl = (std::uint32_t{reply[at + 4]} << 24) |
                                  (std::uint32_t{reply[at + 5]} << 16) |
                                  (std::uint32_t{reply[at + 6]} << 8) | reply[at + 7];
        if (u16(at) == type) least = std::min(least.value_or(ttl), ttl);
        at += kRecordFixed + u16(at + 8);
    }
    // RFC 2181 8: a TTL with the top bit set counts as 0.
    return least && *least <= 0x7fffffffU ? static_cast<int>(*least) : 0;
}

}  // namespace

void DnsCancel::cancel() {
    cancelled_ = true;
    if (auto wait = wait_.lock()) wait->cancel();
}

// One answer to one question (a name and a type), from the server named.
struct DnsResolver::Answer {
    int status = ARES_ENOTFOUND;
    std::string server;
    std::vector<std::string> trail;  // what earlier servers said, when they failed
    std::vector<asio::ip::address> addresses;
    int ttl = 0;  // the least of the addresses'
    std::vector<MxRecord> mx;

    std::string said() const { return status_name(status) + " from " + server; }
};

// The questions of one lookup, answered by c-ares callbacks; the wait ends when none is left.
// Not at a first NXDOMAIN: some servers answer NXDOMAIN for AAAA of a name that has an A record
// (RFC 4074 4.2), and the other question is already on its way.
// Once one question has addresses, the others get `grace` more, not the rest of the deadline: a
// server or middlebox that drops AAAA questions would otherwise eat the run's time, and the run
// would fail connecting though the A answer came at once (getaddrinfo gives what it has, too).
struct DnsResolver::Gather {
    explicit Gather(const asio::any_io_executor& executor)
        : wakeup(std::make_shared<asio::steady_timer>(executor)) {}
    std::vector<std::optional<Answer>> answers;
    std::size_t unanswered = 0;
    bool settled = false;
    std::optional<Clock::duration> grace;                // none: every question is waited for
    Clock::time_point until = Clock::time_point::max();  // when the wait ends
    std::shared_ptr<asio::steady_timer> wakeup;

    void answered(std::size_t index, Answer answer) {
        const bool has_addresses = answer.status == ARES_SUCCESS && !answer.addresses.empty();
        answers[index] = std::move(answer);
        if (--unanswered == 0) {
            settled = true;
            wakeup->cancel();
        } else if (has_addresses) {
            start_grace();
        }
    }
    // Addresses are at hand (answered, or from the cache): the other questions get the grace.
    void start_grace() {
        if (!grace || Clock::now() + *grace >= until) return;
        until = Clock::now() + *grace;
        wakeup->cancel();  // the wait takes the nearer end
    }
};

// One c-ares channel with one server, driven by Asio: c-ares says which sockets it wants
// watched (ARES_OPT_SOCK_STATE_CB), a descriptor wait per socket reports readiness, and a timer
// lets c-ares retry and time out (c-ares 1.18 has no thread of its own).
class DnsResolver::Channel : public std::enable_shared_from_this<Channel> {
  public:
    Channel(asio::any_io_executor executor, std::string server)
        : executor_(std::move(executor)), server_(std::move(server)), timer_(executor_) {}
    ~Channel() {
        // The descriptors belong to c-ares: taken out of the loop, not closed.
        for (auto& [fd, watch] : watches_) watch->descriptor.release();
        watches_.clear();
        timer_.cancel();
        // The queries still open end with ARES_EDESTRUCTION; sockets it closes need no watch.
        destroying_ = true;
        if (channel_ != nullptr) ares_destroy(channel_);
    }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    bool open(const Options& options, const ares_addr_port_node* server, std::string& problem) {
        ares_options settings{};
        settings.sock_state_cb = &Channel::on_socket_state;
        settings.sock_state_cb_data = this;
        settings.timeout = static_cast<int>(options.attempt_timeout.count());
        settings.tries = options.tries;
        // A SERVFAIL or REFUSED is the answer (the channel has no other server to ask): passed
        // on as such, where c-ares would ask again and then report "could not contact".
        settings.flags = ARES_FLAG_NOCHECKRESP;
        const int mask =
            ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
        if (const int status = ares_init_options(&channel_, &settings, mask);
            status != ARES_SUCCESS) {
            channel_ = nullptr;
            problem = std::string("cannot set up c-ares: ") + ares_strerror(status);
            return false;
        }
        ares_addr_port_node only = *server;
        only.next = nullptr;
        if (const int status = ares_set_servers_ports(channel_, &only); status != ARES_SUCCESS) {
            problem = std::string("cannot set the DNS server: ") + ares_strerror(status);
            return false;
        }
        return true;
    }

    ares_channel get() const { return channel_; }
    const std::string& server() const { return server_; }

    // After every call that may have sent or received: when c-ares next needs to act.
    void schedule() {
        timeval wait{};
        if (ares_timeout(channel_, nullptr, &wait) == nullptr) {
            timer_.cancel();
            return;
        }
        timer_.expires_after(std::chrono::seconds(wait.tv_sec) +
                             std::chrono::microseconds(wait.tv_usec));
        timer_.async_wait([weak = weak_from_this()](error_code ec) {
            if (ec) return;
            if (auto self = weak.lock()) {
                ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
                self->schedule();
            }
        });
    }

  private:
    struct Watch {
        explicit Watch(const asio::any_io_executor& executor) : descriptor(executor) {}
        asio::posix::stream_descriptor descriptor;
        bool want_read = false;
        bool want_write = false;
        bool reading = false;
        bool writing = false;
    };

    static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
        static_cast<Channel*>(data)->watch(fd, readable != 0, writable != 0);
    }

    void watch(int fd, bool readable, bool writable) {
        if (destroying_) return;
        const auto found = watches_.find(fd);
        if (!readable && !writable) {
            // c-ares closes the socket right after: out of the loop first, without closing it.
            if (found != watches_.end()) {
                found->second->descriptor.release();
                watches_.erase(found);
            }
            return;
        }
        std::shared_ptr<Watch> entry;
        if (found != watches_.end()) {
            entry = found->second;
        } else {
            entry = std::make_shared<Watch>(executor_);
            // Not the throwing constructor: this runs inside a c-ares callback. Unwatched, the
            // socket's query still ends by c-ares's own timeout.
            error_code ec;
            entry->descriptor.assign(fd, ec);
            if (ec) return;
            watches_.emplace(fd, entry);
        }
        entry->want_read = readable;
        entry->want_write = writable;
        arm(entry);
    }

    void arm(const std::shared_ptr<Watch>& entry) {
        if (entry->want_read && !entry->reading) wait_for(entry, Direction::read);
        if (entry->want_write && !entry->writing) wait_for(entry, Direction::write);
    }

    enum class Direction { read, write };

    // One readiness wait on the socket, handed to c-ares as it asked (the other side as none).
    void wait_for(const std::shared_ptr<Watch>& entry, Direction direction) {
        const bool read = direction == Direction::read;
        (read ? entry->reading : entry->writing) = true;
        const int fd = entry->descriptor.native_handle();
        entry->descriptor.async_wait(
            read ? asio::posix::stream_descriptor::wait_read
                 : asio::posix::stream_descriptor::wait_write,
            [weak = weak_from_this(), watch = std::weak_ptr(entry), fd, read](error_code ec) {
                const auto self = weak.lock();
                const auto watched = watch.lock();
                if (!self || !watched) return;
                (read ? watched->reading : watched->writing) = false;
                if (ec) return;
                ares_process_fd(self->channel_, read ? fd : ARES_SOCKET_BAD,
                                read ? ARES_SOCKET_BAD : fd);
                self->rearm(fd, watched);
            });
    }

    // c-ares says nothing when it still wants the socket watched: watch it again, unless it let
    // go of it (or of this socket for another one with the same number) meanwhile.
    void rearm(int fd, const std::shared_ptr<Watch>& entry) {
        const auto found = watches_.find(fd);
        if (found != watches_.end() && found->second == entry) arm(entry);
        schedule();
    }

    asio::any_io_executor executor_;
    std::string server_;
    ares_channel channel_ = nullptr;
    asio::steady_timer timer_;
    std::map<int, std::shared_ptr<Watch>> watches_;
    bool destroying_ = false;
};

std::shared_ptr<DnsResolver> DnsResolver::create(const asio::any_io_executor& executor,
                                                 Options options, std::string& problem) {
    std::shared_ptr<DnsResolver> resolver(new DnsResolver(executor, std::move(options)));
    if (!resolver->start(problem)) return nullptr;
    return resolver;
}

DnsResolver::DnsResolver(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

DnsResolver::~DnsResolver() = default;

bool DnsResolver::start(std::string& problem) {
    initialise_library();
    std::vector<ares_addr_port_node> servers;
    for (const DnsServer& server : options_.servers) {
        ares_addr_port_node node{};
        if (server.address.is_v4()) {
            node.family = AF_INET;
            const auto bytes = server.address.to_v4().to_bytes();
            std::memcpy(&node.addr.addr4, bytes.data(), bytes.size());
        } else {
            node.family = AF_INET6;
            const auto bytes = server.address.to_v6().to_bytes();
            std::memcpy(&node.addr.addr6, bytes.data(), bytes.size());
        }
        node.udp_port = server.port;
        node.tcp_port = server.port;
        servers.push_back(node);
    }
    if (servers.empty()) {
        // The system's servers, as c-ares reads them from resolv.conf.
        ares_channel system = nullptr;
        if (const int status = ares_init(&system); status != ARES_SUCCESS) {
            problem = std::string("cannot read the system's DNS servers: ") + ares_strerror(status);
            return false;
        }
        ares_addr_port_node* found = nullptr;
        ares_get_servers_ports(system, &found);
        for (const ares_addr_port_node* node = found; node != nullptr; node = node->next) {
            servers.push_back(*node);
        }
        ares_free_data(found);
        ares_destroy(system);
        if (servers.empty()) {
            problem = "no DNS server in the system's resolv.conf";
            return false;
        }
    }
    for (const ares_addr_port_node& node : servers) {
        char text[INET6_ADDRSTRLEN] = {};
        ares_inet_ntop(node.family, &node.addr, text, sizeof text);
        const int port = node.udp_port != 0 ? node.udp_port : 53;
        const std::string name =
            node.family == AF_INET6 ? "[" + std::string(text) + "]" : std::string(text);
        auto channel = std::make_shared<Channel>(executor_, name + ":" + std::to_string(port));
        if (!channel->open(options_, &node, problem)) return false;
        channels_.push_back(std::move(channel));
    }
    return true;
}

void DnsResolver::ask(std::string name, int type, std::size_t server,
                      std::vector<std::string> trail, std::function<void(Answer)> done) {
    struct Question {
        std::weak_ptr<DnsResolver> resolver;
        std::string name;
        int type;
        std::size_t server;
        std::string server_name;
        std::vector<std::string> trail;
        std::function<void(Answer)> done;
    };
    Channel& channel = *channels_[server];
    // Owned by c-ares until its callback, which always comes (at the latest as
    // ARES_EDESTRUCTION when the channel goes).
    auto* asked = new Question{weak_from_this(), std::move(name),  type,           server,
                               channel.server(), std::move(trail), std::move(done)};
    const auto answered = [](void* arg, int status, int /*timeouts*/, unsigned char* reply,
                             int length) {
        const std::unique_ptr<Question> question(static_cast<Question*>(arg));
        Answer answer;
        answer.status = status;
        answer.server = question->server_name;
        if (status == ARES_SUCCESS && question->type == ns_t_a) {
            std::array<ares_addrttl, kMostAddresses> found{};
            int count = kMostAddresses;
            answer.status = ares_parse_a_reply(reply, length, nullptr, found.data(), &count);
            for (int index = 0; answer.status == ARES_SUCCESS && index < count; ++index) {
                asio::ip::address_v4::bytes_type bytes{};
                std::memcpy(bytes.data(), &found[index].ipaddr, bytes.size());
                answer.addresses.emplace_back(asio::ip::address_v4(bytes));
                answer.ttl = index == 0 ? found[index].ttl : std::min(answer.ttl, found[index].ttl);
            }
        } else if (status == ARES_SUCCESS && question->type == ns_t_aaaa) {
            std::array<ares_addr6ttl, kMostAddresses> found{};
            int count = kMostAddresses;
            answer.status = ares_parse_aaaa_reply(reply, length, nullptr, found.data(), &count);
            for (int index = 0; answer.status == ARES_SUCCESS && index < count; ++index) {
                asio::ip::address_v6::bytes_type bytes{};
                std::memcpy(bytes.data(), &found[index].ip6addr, bytes.size());
                answer.addresses.emplace_back(asio::ip::address_v6(bytes));
                answer.ttl = index == 0 ? found[index].ttl : std::min(answer.ttl, found[index].ttl);
            }
        } else if (status == ARES_SUCCESS) {
            ares_mx_reply* records = nullptr;
            answer.status = ares_parse_mx_reply(reply, length, &records);
            for (const ares_mx_reply* record = records; record != nullptr; record = record->next)
                answer.mx.push_back({record->priority, lower(record->host)});
            answer.ttl = least_ttl(reply, length, ns_t_mx);
            if (records != nullptr) ares_free_data(records);
        }
        if (answer.status == ARES_SUCCESS && answer.addresses.empty() && answer.mx.empty())
            answer.status = ARES_ENODATA;
        const auto resolver = question->resolver.lock();
        if (resolver && try_next_server(answer.status) &&
            question->server + 1 < resolver->channels_.size()) {
            question->trail.push_back(answer.said());
            resolver->ask(question->name, question->type, question->server + 1,
                          std::move(question->trail), std::move(question->done));
            return;
        }
        answer.trail = std::move(question->trail);
        question->done(std::move(answer));
    };
    ares_search(channel.get(), asked->name.c_str(), ns_c_in, type, answered, asked);
    channel.schedule();
}

asio::awaitable<void> DnsResolver::wait(std::shared_ptr<Gather> gather, Clock::time_point deadline,
                                        DnsCancel& cancel) {
    if (gather->settled || gather->unanswered == 0 || cancel.cancelled()) co_return;
    cancel.wait_ = gather->wakeup;
    gather->until = std::min(gather->until, deadline);
    while (!gather->settled && !cancel.cancelled() && Clock::now() < gather->until) {
        gather->wakeup->expires_at(gather->until);
        error_code ec;
        co_await gather->wakeup->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    cancel.wait_.reset();
}

std::string DnsResolver::servers() const {
    std::string names;
    for (const auto& channel : channels_) names += (names.empty() ? "" : ", ") + channel->server();
    return names;
}

std::string DnsResolver::unanswered(Clock::time_point deadline, const DnsCancel& cancel) const {
    // Which of them was being asked is not known here: name them all, in the order asked.
    const std::string names = servers();
    if (!cancel.cancelled() || Clock::now() >= deadline)
        return "timeout: no answer from " + names + " by the run's deadline";
    return "stopped while waiting for an answer from " + names;
}

std::optional<AddressLookup> DnsResolver::from_hosts_file(const std::string& host,
                                                          IpFamily family) {
    if (!options_.use_hosts_file || channels_.empty()) return std::nullopt;
    AddressLookup found;
    for (const int wanted : {AF_INET6, AF_INET}) {
        if ((wanted == AF_INET6 && family == IpFamily::v4) ||
            (wanted == AF_INET && family == IpFamily::v6))
            continue;
        hostent* entry = nullptr;
        if (ares_gethostbyname_file(channels_.front()->get(), host.c_str(), wanted, &entry) !=
            ARES_SUCCESS)
            continue;
        for (char** address = entry->h_addr_list; *address != nullptr; ++address) {
            if (wanted == AF_INET6) {
                asio::ip::address_v6::bytes_type bytes{};
                std::memcpy(bytes.data(), *address, bytes.size());
                found.addresses.emplace_back(asio::ip::address_v6(bytes));
            } else {
                asio::ip::address_v4::bytes_type bytes{};
                std::memcpy(bytes.data(), *address, bytes.size());
                found.addresses.emplace_back(asio::ip::address_v4(bytes));
            }
        }
        ares_free_hostent(entry);
    }
    if (found.addresses.empty()) return std::nullopt;
    found.notes.push_back(host + " found in /etc/hosts");
    return found;
}

asio::awaitable<AddressLookup> DnsResolver::addresses(std::string host, IpFamily family,
                                                      Clock::time_point deadline,
                                                      DnsCancel& cancel) {
    error_code ec;
    const auto literal = asio::ip::make_address(host, ec);
    if (!ec) co_return AddressLookup{{literal}, {}, {}};
    if (auto found = from_hosts_file(host, family)) co_return std::move(*found);

    std::vector<int> types;
    if (family != IpFamily::v4) types.push_back(ns_t_aaaa);
    if (family != IpFamily::v6) types.push_back(ns_t_a);
    const std::string key = lower(host);
    auto gather = std::make_shared<Gather>(executor_);
    gather->answers.resize(types.size());
    gather->grace = options_.other_family_grace;
    AddressLookup lookup;
    const auto now = options_.now();
    for (std::size_t index = 0; index < types.size(); ++index) {
        const auto cached = cache_.find({key, types[index]});
        if (cached == cache_.end()) continue;
        if (now >= cached->second.expires) {
            cache_.erase(cached);
            continue;
        }
        Answer answer;
        answer.status = ARES_SUCCESS;
        answer.server = cached->second.server;
        answer.addresses = cached->second.addresses;
        answer.ttl = -1;
        const auto left =
            std::chrono::duration_cast<std::chrono::seconds>(cached->second.expires - now);
        lookup.notes.push_back(host + " " + std::string(type_name(types[index])) +
                               ": cached answer from " + answer.server + ", " +
                               std::to_string(left.count()) + " s left");
        gather->answers[index] = std::move(answer);
    }
    // Every question counted before any is asked: c-ares may answer one at once (a bad name),
    // which must not settle the lookup while the others are still to be asked.
    gather->unanswered = static_cast<std::size_t>(
        std::count_if(gather->answers.begin(), gather->answers.end(),
                      [](const auto& answer) { return !answer.has_value(); }));
    if (gather->unanswered < types.size()) gather->start_grace();  // a family from the cache
    for (std::size_t index = 0; index < types.size(); ++index) {
        if (gather->answers[index]) continue;
        ask(host, types[index], 0, {},
            [gather, index, key, type = types[index], weak = weak_from_this()](Answer answer) {
                // Only an answer with addresses is cached: a failure or "no such name" shows
                // again at the next run, so an outage and its end are seen at once.
                if (auto self = weak.lock();
                    self && answer.status == ARES_SUCCESS && answer.ttl > 0) {
                    self->cache_[{key, type}] = {
                        answer.addresses, self->options_.now() + std::chrono::seconds(answer.ttl),
                        answer.server};
                }
                gather->answered(index, std::move(answer));
            });
    }
    co_await wait(gather, deadline, cancel);

    const Answer* failed = nullptr;  // the one whose failure says most
    for (std::size_t index = 0; index < types.size(); ++index) {
        const auto& answer = gather->answers[index];
        if (!answer) continue;
        const std::string type(type_name(types[index]));
        for (const auto& earlier : answer->trail)
            lookup.notes.push_back(host + " " + type + ": " + earlier);
        if (answer->status == ARES_SUCCESS) {
            std::string list;
            for (const auto& address : answer->addresses) {
                lookup.addresses.push_back(address);
                list += (list.empty() ? "" : ", ") + address.to_string();
            }
            if (answer->ttl >= 0) {  // not from the cache, which said so above
                lookup.notes.push_back(host + " " + type + " " + list + " from " + answer->server +
                                       ", TTL " + std::to_string(answer->ttl) + " s");
            }
            continue;
        }
        lookup.notes.push_back(host + " " + type + ": " + answer->said());
        // NXDOMAIN says most (the name is gone), NODATA least (only this family is missing).
        if (failed == nullptr || answer->status == ARES_ENOTFOUND || failed->status == ARES_ENODATA)
            failed = &*answer;
    }
    if (!lookup.addresses.empty()) {
        for (std::size_t index = 0; index < types.size(); ++index) {
            if (gather->answers[index]) continue;
            const std::string why = cancel.cancelled() ? "stopped before it was answered"
                                    : Clock::now() >= deadline
                                        ? "no answer by the run's deadline"
                                        : "no answer within " +
                                              format_duration(options_.other_family_grace) +
                                              " of the other family's addresses";
            lookup.notes.push_back(host + " " + std::string(type_name(types[index])) + ": " + why +
                                   "; going on without it");
        }
        co_return lookup;
    }
    // An NXDOMAIN says what happened even when the other family's question went unanswered.
    const bool no_such_name = failed != nullptr && failed->status == ARES_ENOTFOUND;
    if (gather->unanswered > 0 && !no_such_name) {
        lookup.error = unanswered(deadline, cancel);
    } else if (failed != nullptr && failed->status == ARES_ENODATA) {
        const std::string which = family == IpFamily::v4   ? "no IPv4 address"
                                  : family == IpFamily::v6 ? "no IPv6 address"
                                                           : "no IPv4 or IPv6 address";
        lookup.error = which + " (" + failed->said() + ")";
    } else if (failed != nullptr) {
        lookup.error = failed->said();
    }
    co_return lookup;
}

asio::awaitable<MxLookup> DnsResolver::mx(std::string domain, Clock::time_point deadline,
                                          DnsCancel& cancel) {
    auto gather = std::make_shared<Gather>(executor_);
    gather->answers.resize(1);
    gather->unanswered = 1;
    ask(domain, ns_t_mx, 0, {},
        [gather](Answer answer) { gather->answered(0, std::move(answer)); });
    co_await wait(gather, deadline, cancel);
    MxLookup lookup;
    if (!gather->answers[0]) {
        lookup.error = unanswered(deadline, cancel);
        co_return lookup;
    }
    Answer& answer = *gather->answers[0];
    switch (answer.status) {
        case ARES_SUCCESS:
            break;
        case ARES_ENOTFOUND:
            lookup.result = MxLookup::Result::no_domain;
            lookup.error = answer.said();
            co_return lookup;
        case ARES_ENODATA:
            lookup.result = MxLookup::Result::no_mx;
            lookup.error = "no MX record (" + answer.said() + ")";
            co_return lookup;
        default:
            lookup.error = answer.said();
            co_return lookup;
    }
    std::sort(answer.mx.begin(), answer.mx.end(), [](const MxRecord& a, const MxRecord& b) {
        return std::tie(a.preference, a.exchange) < std::tie(b.preference, b.exchange);
    });
    lookup.records = std::move(answer.mx);
    lookup.ttl = std::chrono::seconds(answer.ttl);
    // RFC 7505: a single record with the root as exchange says the domain takes no mail.
    const bool null_mx = lookup.records.size() == 1 && lookup.records.front().exchange.empty();
    lookup.result = null_mx ? MxLookup::Result::null_mx : MxLookup::Result::records;
    co_return lookup;
}

}  // namespace mailcanary
