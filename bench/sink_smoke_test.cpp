// The benchmark sink speaks SMTP correctly: banner after its delay, multi-line EHLO, STARTTLS with
// a certificate a client verifies, AUTH PLAIN and LOGIN, a pipelined transaction, QUIT, and it
// counts what it saw. No timing beyond "the delay is at least what was asked".
#include <utility>  // before Asio: g++ 12 needs std::exchange for awaitable.hpp

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>

#include "bench/sink.hpp"

namespace mailcanary::bench {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

// Reads one whole reply (every line up to the one with a space after the code).
template <typename Stream>
std::string read_reply(Stream& stream, std::string& pending) {
    std::string reply;
    for (;;) {
        const auto end = pending.find("\r\n");
        if (end == std::string::npos) {
            char chunk[1024];
            const std::size_t got = stream.read_some(asio::buffer(chunk));
            pending.append(chunk, got);
            continue;
        }
        const std::string line = pending.substr(0, end);
        pending.erase(0, end + 2);
        reply += line + "\n";
        if (line.size() < 4 || line[3] == ' ') return reply;
    }
}

template <typename Stream>
std::string command(Stream& stream, std::string& pending, const std::string& line) {
    asio::write(stream, asio::buffer(line + "\r\n"));
    return read_reply(stream, pending);
}

class SinkTest : public ::testing::Test {
  protected:
    void SetUp() override {
        SinkOptions options;
        options.banner_delay = std::chrono::milliseconds(20);
        options.threads = 2;
        sink_ = std::make_unique<SmtpSink>(options);
        sink_->start();
    }

    tcp::socket connect() {
        tcp::socket socket(io_);
        socket.connect(sink_->local_endpoint());
        return socket;
    }

    asio::io_context io_;
    std::unique_ptr<SmtpSink> sink_;
};

TEST_F(SinkTest, PlainDialogWithPipelinedTransaction) {
    tcp::socket socket = connect();
    std::string pending;
    const auto before = std::chrono::steady_clock::now();
    const std::string banner = read_reply(socket, pending);
    EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(19));
    EXPECT_EQ(banner.substr(0, 4), "220 ");

    const std::string ehlo = command(socket, pending, "EHLO client.test");
    EXPECT_EQ(ehlo.substr(0, 4), "250-");
    EXPECT_NE(ehlo.find("250-PIPELINING\n"), std::string::npos);
    EXPECT_NE(ehlo.find("250-STARTTLS\n"), std::string::npos);
    EXPECT_NE(ehlo.find("250-AUTH PLAIN LOGIN\n"), std::string::npos);
    EXPECT_NE(ehlo.find("250 SMTPUTF8\n"), std::string::npos);

    // \0bench\0bench
    EXPECT_EQ(command(socket, pending, "AUTH PLAIN AGJlbmNoAGJlbmNo").substr(0, 4), "235 ");

    asio::write(socket, asio::buffer(std::string("MAIL FROM:<a@example.test>\r\n"
                                                 "RCPT TO:<b@example.test>\r\n"
                                                 "DATA\r\n")));
    EXPECT_EQ(read_reply(socket, pending).substr(0, 4), "250 ");
    EXPECT_EQ(read_reply(socket, pending).substr(0, 4), "250 ");
    EXPECT_EQ(read_reply(socket, pending).substr(0, 4), "354 ");
    const std::string queued =
        command(socket, pending, "Subject: test\r\n\r\n..dot-stuffed line\r\nbody\r\n.");
    EXPECT_EQ(queued.substr(0, 4), "250 ");
    EXPECT_NE(queued.find("queued as"), std::string::npos);
    EXPECT_EQ(command(socket, pending, "RSET").substr(0, 4), "250 ");
    EXPECT_EQ(command(socket, pending, "FOO").substr(0, 4), "502 ");
    EXPECT_EQ(command(socket, pending, "QUIT").substr(0, 4), "221 ");
    char byte;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, asio::error::eof);

    const SinkStats stats = sink_->stats();
    EXPECT_EQ(stats.sessions, 1U);
    EXPECT_EQ(stats.quits, 1U);
    EXPECT_EQ(stats.auths, 1U);
    EXPECT_EQ(stats.messages, 1U);
    ASSERT_EQ(stats.banner_us.size(), 1U);
    EXPECT_GE(stats.banner_us[0], 20000U);
    EXPECT_NE(stats_json(stats).find("\"sessions\":1"), std::string::npos);
    sink_->reset_stats();
    EXPECT_EQ(sink_->stats().sessions, 0U);
}

TEST_F(SinkTest, StartTlsWithVerifiedCertificateThenAuthLogin) {
    tcp::socket socket = connect();
    std::string pending;
    read_reply(socket, pending);
    command(socket, pending, "EHLO client.test");
    EXPECT_EQ(command(socket, pending, "STARTTLS").substr(0, 4), "220 ");
    ASSERT_TRUE(pending.empty());

    ssl::context context(ssl::context::tls_client);
    context.add_certificate_authority(asio::buffer(sink_->ca_pem()));
    context.set_verify_mode(ssl::verify_peer);
    ssl::stream<tcp::socket&> tls(socket, context);
    ASSERT_EQ(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls.native_handle()), "127.0.0.1"), 1);
    tls.handshake(ssl::stream_base::client);
    EXPECT_EQ(SSL_get_verify_result(tls.native_handle()), X509_V_OK);

    const std::string ehlo = command(tls, pending, "EHLO client.test");
    EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);  // not offered twice
    EXPECT_EQ(command(tls, pending, "AUTH LOGIN").substr(0, 4), "334 ");
    EXPECT_EQ(command(tls, pending, "YmVuY2g=").substr(0, 4), "334 ");       // bench
    EXPECT_EQ(command(tls, pending, "d3Jvbmc=").substr(0, 4), "535 ");       // wrong
    EXPECT_EQ(command(tls, pending, "AUTH LOGIN YmVuY2g=").substr(0, 4), "334 ");
    EXPECT_EQ(command(tls, pending, "YmVuY2g=").substr(0, 4), "235 ");       // bench
    EXPECT_EQ(command(tls, pending, "QUIT").substr(0, 4), "221 ");
    char byte;
    boost::system::error_code ec;
    tls.read_some(asio::buffer(&byte, 1), ec);  // the sink closes: its counts are final
    EXPECT_TRUE(ec);

    const SinkStats stats = sink_->stats();
    EXPECT_EQ(stats.tls_handshakes, 1U);
    EXPECT_EQ(stats.auths, 1U);
    EXPECT_EQ(stats.quits, 1U);
}

TEST_F(SinkTest, ManySessionsOverBothThreads) {
    for (int i = 0; i < 20; ++i) {
        tcp::socket socket = connect();
        std::string pending;
        read_reply(socket, pending);
        EXPECT_EQ(command(socket, pending, "HELO client.test").substr(0, 4), "250 ");
        EXPECT_EQ(command(socket, pending, "QUIT").substr(0, 4), "221 ");
        char byte;
        boost::system::error_code ec;
        socket.read_some(asio::buffer(&byte, 1), ec);
        EXPECT_EQ(ec, asio::error::eof);
    }
    const SinkStats stats = sink_->stats();
    EXPECT_EQ(stats.sessions, 20U);
    EXPECT_EQ(stats.quits, 20U);
    EXPECT_EQ(stats.errors, 0U);
}

}  // namespace
}  // namespace mailcanary::bench
