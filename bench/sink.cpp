#include "bench/sink.hpp"

#include <utility>  // before Asio: g++ 12 needs std::exchange for awaitable.hpp

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <list>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace mailcanary::bench {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// ---- certificates made at start ----------------------------------------------------------------

[[noreturn]] void openssl_failure(const std::string& what) {
    std::string message = "sink: " + what;
    while (const unsigned long code = ERR_get_error()) {
        std::array<char, 256> text{};
        ERR_error_string_n(code, text.data(), text.size());
        message += "; ";
        message += text.data();
    }
    throw std::runtime_error(message);
}

template <typename T>
T* checked(T* pointer, const std::string& what) {
    if (pointer == nullptr) openssl_failure(what);
    return pointer;
}

void checked(int result, const std::string& what) {
    if (result != 1) openssl_failure(what);
}

struct KeyDeleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertDeleter {
    void operator()(X509* cert) const { X509_free(cert); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

Key make_key(bool rsa) {
    return Key(checked(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"), "key generation"));
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension =
        checked(X509V3_EXT_conf_nid(nullptr, &context, nid, value), "extension");
    const int added = X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
    checked(added, "X509_add_ext");
}

Cert make_cert(EVP_PKEY* key, const char* common_name, long serial, X509* issuer,
               EVP_PKEY* issuer_key, bool ca, const std::string& subject_alt_names) {
    Cert cert(checked(X509_new(), "X509_new"));
    checked(X509_set_version(cert.get(), 2), "X509_set_version");
    checked(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial), "serial");
    checked(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr ? 1 : 0,
            "notBefore");
    checked(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600) != nullptr ? 1 : 0,
            "notAfter");
    checked(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    checked(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                       0),
            "subject");
    X509* signer = issuer != nullptr ? issuer : cert.get();
    checked(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)), "issuer");
    if (ca) {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
        add_extension(cert.get(), signer, NID_subject_alt_name, subject_alt_names.c_str());
    }
    add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) openssl_failure("X509_sign");
    return cert;
}

std::string cert_pem(X509* cert) {
    BIO* bio = checked(BIO_new(BIO_s_mem()), "BIO_new");
    checked(PEM_write_bio_X509(bio, cert), "PEM_write_bio_X509");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return pem;
}

// A private CA and a server certificate it signed, valid for the sink's name, localhost and the
// loopback addresses, so clients verify for real (one signature, as with a real chain).
std::shared_ptr<ssl::context> make_server_context(const SinkOptions& options,
                                                  std::string& ca_pem) {
    Key ca_key = make_key(options.rsa);
    Cert ca = make_cert(ca_key.get(), "mailcanary bench sink CA", 1, nullptr, ca_key.get(), true,
                        {});
    Key leaf_key = make_key(options.rsa);
    Cert leaf = make_cert(leaf_key.get(), options.hostname.c_str(), 2, ca.get(), ca_key.get(),
                          false,
                          "DNS:" + options.hostname +
                              ",DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1");
    ca_pem = cert_pem(ca.get());

    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    checked(SSL_CTX_use_certificate(native, leaf.get()), "SSL_CTX_use_certificate");
    checked(SSL_CTX_use_PrivateKey(native, leaf_key.get()), "SSL_CTX_use_PrivateKey");
    checked(SSL_CTX_check_private_key(native), "SSL_CTX_check_private_key");
    return context;
}

// ---- the SMTP session ---------------------------------------------------------------------------

constexpr std::size_t kMaxLine = 4096;

bool starts_with_command(std::string_view line, std::string_view command) {
    if (line.size() < command.size()) return false;
    for (std::size_t i = 0; i < command.size(); ++i) {
        const char c = line[i];
        const char upper = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
        if (upper != command[i]) return false;
    }
    return line.size() == command.size() || line[command.size()] == ' ' ||
           line[command.size()] == ':';
}

std::string_view argument(std::string_view line, std::size_t command_length) {
    if (line.size() <= command_length) return {};
    std::string_view rest = line.substr(command_length + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    return rest;
}

std::optional<std::string> base64_decode(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    unsigned bits = 0;
    int count = 0;
    for (const char c : text) {
        if (c == '=') break;
        const int v = value(c);
        if (v < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<unsigned>(v);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> count) & 0xffU);
        }
    }
    return out;
}

}  // namespace

struct SmtpSink::Worker {
    Worker(const SinkOptions& sink_options, std::shared_ptr<ssl::context> tls_context)
        : options(sink_options), tls(std::move(tls_context)), acceptor(io) {}

    const SinkOptions& options;
    std::shared_ptr<ssl::context> tls;
    asio::io_context io{1};
    tcp::acceptor acceptor;
    std::list<tcp::socket*> open;  // sessions to close on stop (this thread only)
    bool stopping = false;

    mutable std::mutex mutex;
    SinkStats stats;

    template <typename Field>
    void count(Field SinkStats::*field) {
        std::lock_guard lock(mutex);
        ++(stats.*field);
    }

    asio::awaitable<void> accept_loop();
    asio::awaitable<void> session(tcp::socket socket);
};

namespace {

enum class Mode { command, data, auth_plain, auth_login_user, auth_login_password };

class Session {
  public:
    Session(SmtpSink::Worker& worker, tcp::socket& socket) : worker_(worker), socket_(socket) {}

    asio::awaitable<void> run(Clock::time_point accepted) {
        error_code ec;
        if (worker_.options.banner_delay.count() > 0) {
            asio::steady_timer delay(socket_.get_executor(),
                                     accepted + worker_.options.banner_delay);
            co_await delay.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (ec || worker_.stopping) co_return;
        }
        out_ = "220 " + worker_.options.hostname + " ESMTP mailcanary bench sink\r\n";
        co_await flush(ec);
        if (ec) co_return finish(ec);
        {
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - accepted);
            std::lock_guard lock(worker_.mutex);
            worker_.stats.banner_us.push_back(static_cast<std::uint32_t>(elapsed.count()));
        }

        while (!closing_) {
            std::size_t received = 0;
            if (tls_) {
                received = co_await tls_->async_read_some(
                    asio::buffer(buffer_), asio::redirect_error(asio::use_awaitable, ec));
            } else {
                received = co_await socket_.async_read_some(
                    asio::buffer(buffer_), asio::redirect_error(asio::use_awaitable, ec));
            }
            if (ec) co_return finish(ec);
            in_.append(buffer_.data(), received);

            std::size_t start = 0;
            while (!closing_ && !start_tls_) {
                const auto end = in_.find("\r\n", start);
                if (end == std::string::npos) break;
                handle(std::string_view(in_).substr(start, end - start));
                start = end + 2;
            }
            in_.erase(0, start);
            if (in_.size() > kMaxLine && !closing_) {
                reply("500 5.5.0 Line too long");
                closing_ = true;
            }
            co_await flush(ec);
            if (ec) co_return finish(ec);
            if (start_tls_) {
                start_tls_ = false;
                // Anything the client sent after STARTTLS before the handshake is discarded, as
                // a correct server must (CVE-2011-0411).
                in_.clear();
                tls_.emplace(socket_, *worker_.tls);
                co_await tls_->async_handshake(ssl::stream_base::server,
                                               asio::redirect_error(asio::use_awaitable, ec));
                if (ec) {
                    worker_.count(&SinkStats::tls_failures);
                    co_return;
                }
                worker_.count(&SinkStats::tls_handshakes);
                reset_transaction();
                greeted_ = false;
            }
        }
        if (quit_) worker_.count(&SinkStats::quits);
    }

  private:
    void finish(const error_code& ec) {
        if (ec != asio::error::eof && ec != ssl::error::stream_truncated &&
            ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
            worker_.count(&SinkStats::errors);
        }
    }

    asio::awaitable<void> flush(error_code& ec) {
        if (out_.empty()) co_return;
        if (tls_) {
            co_await asio::async_write(*tls_, asio::buffer(out_),
                                       asio::redirect_error(asio::use_awaitable, ec));
        } else {
            co_await asio::async_write(socket_, asio::buffer(out_),
                                       asio::redirect_error(asio::use_awaitable, ec));
        }
        out_.clear();
    }

    void reply(std::string_view text) {
        out_ += text;
        out_ += "\r\n";
    }

    void reset_transaction() {
        has_sender_ = false;
        recipients_ = 0;
    }

    void check_credentials(std::string_view user, std::string_view password) {
        mode_ = Mode::command;
        if (user == worker_.options.username && password == worker_.options.password) {
            authenticated_ = true;
            worker_.count(&SinkStats::auths);
            reply("235 2.7.0 Authentication successful");
        } else {
            reply("535 5.7.8 Error: authentication failed");
        }
    }

    void plain_response(std::string_view encoded) {
        const auto decoded = base64_decode(encoded);
        if (!decoded) {
            mode_ = Mode::command;
            reply("501 5.5.2 Cannot decode response");
            return;
        }
        // authzid NUL authcid NUL password
        const auto first = decoded->find('\0');
        const auto second =
            first == std::string::npos ? std::string::npos : decoded->find('\0', first + 1);
        if (second == std::string::npos) {
            mode_ = Mode::command;
            reply("501 5.5.2 Invalid PLAIN response");
            return;
        }
        check_credentials(std::string_view(*decoded).substr(first + 1, second - first - 1),
                          std::string_view(*decoded).substr(second + 1));
    }

    void handle(std::string_view line) {
        switch (mode_) {
            case Mode::data:
                if (line == ".") {
                    mode_ = Mode::command;
                    reset_transaction();
                    worker_.count(&SinkStats::messages);
                    char id[32];
                    std::snprintf(id, sizeof id, "%08llX", ++queue_id_);
                    reply(std::string("250 2.0.0 Ok: queued as ") + id);
                }
                return;
            case Mode::auth_plain:
                if (line == "*") {
                    mode_ = Mode::command;
                    reply("501 5.7.0 Authentication aborted");
                } else {
                    plain_response(line);
                }
                return;
            case Mode::auth_login_user: {
                const auto user = base64_decode(line);
                if (line == "*" || !user) {
                    mode_ = Mode::command;
                    reply("501 5.7.0 Authentication aborted");
                    return;
                }
                login_user_ = *user;
                mode_ = Mode::auth_login_password;
                reply("334 UGFzc3dvcmQ6");
                return;
            }
            case Mode::auth_login_password: {
                const auto password = base64_decode(line);
                if (line == "*" || !password) {
                    mode_ = Mode::command;
                    reply("501 5.7.0 Authentication aborted");
                    return;
                }
                check_credentials(login_user_, *password);
                return;
            }
            case Mode::command:
                break;
        }
        command(line);
    }

    void ehlo_reply(std::string_view name) {
        std::string text = "250-" + worker_.options.hostname + " Hello " + std::string(name);
        reply(text);
        reply("250-PIPELINING");
        reply("250-SIZE 10240000");
        reply("250-ENHANCEDSTATUSCODES");
        reply("250-8BITMIME");
        if (worker_.tls && !tls_) reply("250-STARTTLS");
        reply("250-AUTH PLAIN LOGIN");
        reply("250 SMTPUTF8");
    }

    void command(std::string_view line) {
        if (starts_with_command(line, "EHLO")) {
            greeted_ = true;
            reset_transaction();
            ehlo_reply(argument(line, 4));
        } else if (starts_with_command(line, "HELO")) {
            greeted_ = true;
            reset_transaction();
            reply("250 " + worker_.options.hostname);
        } else if (starts_with_command(line, "STARTTLS")) {
            if (!worker_.tls || tls_) {
                reply("502 5.5.1 STARTTLS not available");
            } else {
                reply("220 2.0.0 Ready to start TLS");
                start_tls_ = true;
            }
        } else if (starts_with_command(line, "AUTH")) {
            const std::string_view rest = argument(line, 4);
            const std::string_view mechanism = rest.substr(0, rest.find(' '));
            const std::string_view initial =
                rest.find(' ') == std::string_view::npos ? std::string_view()
                                                         : argument(rest, mechanism.size());
            if (!greeted_) {
                reply("503 5.5.1 Error: send HELO/EHLO first");
            } else if (authenticated_) {
                reply("503 5.5.1 Error: already authenticated");
            } else if (starts_with_command(mechanism, "PLAIN")) {
                if (initial.empty()) {
                    mode_ = Mode::auth_plain;
                    reply("334 ");
                } else {
                    plain_response(initial == "=" ? std::string_view() : initial);
                }
            } else if (starts_with_command(mechanism, "LOGIN")) {
                if (initial.empty()) {
                    mode_ = Mode::auth_login_user;
                    reply("334 VXNlcm5hbWU6");
                } else {
                    mode_ = Mode::auth_login_user;
                    handle(initial);
                }
            } else {
                reply("504 5.5.4 Unrecognized authentication type");
            }
        } else if (starts_with_command(line, "MAIL")) {
            if (!greeted_) {
                reply("503 5.5.1 Error: send HELO/EHLO first");
            } else if (has_sender_) {
                reply("503 5.5.1 Error: nested MAIL command");
            } else {
                has_sender_ = true;
                reply("250 2.1.0 Ok");
            }
        } else if (starts_with_command(line, "RCPT")) {
            if (!has_sender_) {
                reply("503 5.5.1 Error: need MAIL command");
            } else {
                ++recipients_;
                reply("250 2.1.5 Ok");
            }
        } else if (starts_with_command(line, "DATA")) {
            if (recipients_ == 0) {
                reply("503 5.5.1 Error: need RCPT command");
            } else {
                mode_ = Mode::data;
                reply("354 End data with <CR><LF>.<CR><LF>");
            }
        } else if (starts_with_command(line, "RSET")) {
            reset_transaction();
            reply("250 2.0.0 Ok");
        } else if (starts_with_command(line, "NOOP")) {
            reply("250 2.0.0 Ok");
        } else if (starts_with_command(line, "QUIT")) {
            reply("221 2.0.0 Bye");
            quit_ = true;
            closing_ = true;
        } else {
            reply("502 5.5.2 Error: command not recognized");
        }
    }

    SmtpSink::Worker& worker_;
    tcp::socket& socket_;
    std::optional<ssl::stream<tcp::socket&>> tls_;
    std::array<char, 4096> buffer_{};
    std::string in_;
    std::string out_;
    std::string login_user_;
    Mode mode_ = Mode::command;
    bool greeted_ = false;
    bool authenticated_ = false;
    bool has_sender_ = false;
    unsigned recipients_ = 0;
    bool start_tls_ = false;
    bool closing_ = false;
    bool quit_ = false;
    unsigned long long queue_id_ = 0;
};

}  // namespace

asio::awaitable<void> SmtpSink::Worker::accept_loop() {
    while (!stopping) {
        error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (stopping || ec == asio::error::operation_aborted) co_return;
            continue;  // EMFILE and the like: keep serving the sessions we have
        }
        asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> SmtpSink::Worker::session(tcp::socket socket) {
    const auto accepted = Clock::now();
    count(&SinkStats::sessions);
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // no Nagle stall on small replies
    const auto self = open.insert(open.end(), &socket);
    Session state(*this, socket);
    try {
        co_await state.run(accepted);
    } catch (const std::exception&) {
        count(&SinkStats::errors);
    }
    open.erase(self);
    socket.close(ignored);
}

SmtpSink::SmtpSink(SinkOptions options) : options_(std::move(options)) {}

SmtpSink::~SmtpSink() { stop(); }

void SmtpSink::start() {
    std::shared_ptr<ssl::context> tls;
    if (options_.starttls) tls = make_server_context(options_, ca_pem_);
    endpoint_ = options_.listen;
    const unsigned threads = std::max(1U, options_.threads);
    for (unsigned i = 0; i < threads; ++i) {
        auto worker = std::make_unique<Worker>(options_, tls);
        tcp::acceptor& acceptor = worker->acceptor;
        acceptor.open(endpoint_.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        const int on = 1;
        if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
            throw std::runtime_error("sink: SO_REUSEPORT failed");
        }
        acceptor.bind(endpoint_);
        acceptor.listen(4096);
        endpoint_ = acceptor.local_endpoint();  // port 0: the others bind the port the first got
        asio::co_spawn(worker->io, worker->accept_loop(), asio::detached);
        workers_.push_back(std::move(worker));
    }
    for (auto& worker : workers_) {
        threads_.emplace_back([io = &worker->io] { io->run(); });
    }
}

void SmtpSink::stop() {
    for (auto& worker : workers_) {
        asio::post(worker->io, [w = worker.get()] {
            w->stopping = true;
            error_code ignored;
            w->acceptor.close(ignored);
            for (tcp::socket* socket : w->open) socket->close(ignored);
        });
    }
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    workers_.clear();
}

SinkStats SmtpSink::stats() const {
    SinkStats total;
    for (const auto& worker : workers_) {
        std::lock_guard lock(worker->mutex);
        const SinkStats& s = worker->stats;
        total.sessions += s.sessions;
        total.quits += s.quits;
        total.tls_handshakes += s.tls_handshakes;
        total.tls_failures += s.tls_failures;
        total.auths += s.auths;
        total.messages += s.messages;
        total.errors += s.errors;
        total.banner_us.insert(total.banner_us.end(), s.banner_us.begin(), s.banner_us.end());
    }
    return total;
}

void SmtpSink::reset_stats() {
    for (const auto& worker : workers_) {
        std::lock_guard lock(worker->mutex);
        worker->stats = SinkStats{};
    }
}

std::string stats_json(const SinkStats& stats) {
    std::vector<std::uint32_t> sorted = stats.banner_us;
    std::sort(sorted.begin(), sorted.end());
    const auto percentile = [&](double p) -> std::uint32_t {
        if (sorted.empty()) return 0;
        const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
        return sorted[index];
    };
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    char text[512];
    std::snprintf(text, sizeof text,
                  "{\"sessions\":%llu,\"quits\":%llu,\"tls_handshakes\":%llu,"
                  "\"tls_failures\":%llu,\"auths\":%llu,\"messages\":%llu,\"errors\":%llu,"
                  "\"banner_us\":{\"n\":%zu,\"p50\":%u,\"p99\":%u,\"max\":%u},\"cpu_s\":%.6f}",
                  static_cast<unsigned long long>(stats.sessions),
                  static_cast<unsigned long long>(stats.quits),
                  static_cast<unsigned long long>(stats.tls_handshakes),
                  static_cast<unsigned long long>(stats.tls_failures),
                  static_cast<unsigned long long>(stats.auths),
                  static_cast<unsigned long long>(stats.messages),
                  static_cast<unsigned long long>(stats.errors), sorted.size(), percentile(0.5),
                  percentile(0.99), sorted.empty() ? 0U : sorted.back(), cpu);
    return text;
}

}  // namespace mailcanary::bench
