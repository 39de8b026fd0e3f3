// Tests of the test doubles themselves: TestPki and FakeSmtpServer, driven by a blocking client.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>  // before Boost: Boost 1.74's coroutine support needs it with g++ 12
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "support/fake_smtp_server.hpp"
#include "support/test_pki.hpp"

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --- A blocking client ---------------------------------------------------------------------

tcp::socket connect_to(asio::io_context& io, uint16_t port) {
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
    return socket;
}

template <typename Stream>
std::string read_line(Stream& stream, std::string& buffer) {
    const std::size_t length = asio::read_until(stream, asio::dynamic_buffer(buffer), "\r\n");
    std::string line = buffer.substr(0, length - 2);
    buffer.erase(0, length);
    return line;
}

// Reads a whole SMTP reply, one line or several, and returns its last line.
template <typename Stream>
std::string read_reply(Stream& stream, std::string& buffer) {
    std::string line;
    do {
        line = read_line(stream, buffer);
    } while (line.size() > 3 && line[3] == '-');
    return line;
}

template <typename Stream>
void write_line(Stream& stream, const std::string& line) {
    asio::write(stream, asio::buffer(line + "\r\n"));
}

// Reads and drops whatever the peer still sends; returns how the connection ended.
boost::system::error_code read_until_closed(tcp::socket& socket) {
    char chunk[4096];
    boost::system::error_code error;
    while (!error) {
        socket.read_some(asio::buffer(chunk), error);
    }
    return error;
}

asio::ssl::context client_tls_context(const std::string& ca_pem) {
    asio::ssl::context context(asio::ssl::context::tls_client);
    context.add_certificate_authority(asio::buffer(ca_pem));
    context.set_verify_mode(asio::ssl::verify_peer);
    return context;
}

// A client handshake that checks the chain against the CA and the certificate against host.
void client_handshake(asio::ssl::stream<tcp::socket&>& tls, const std::string& host) {
    ASSERT_EQ(SSL_set_tlsext_host_name(tls.native_handle(), host.c_str()), 1);
    tls.set_verify_callback(asio::ssl::host_name_verification(host));
    tls.handshake(asio::ssl::stream_base::client);
}

// --- FakeSmtpServer ------------------------------------------------------------------------

TEST(FakeSmtpServerTest, SendsBannerOnConnect) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false));
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    EXPECT_EQ(read_line(socket, buffer), "220 fake.mailcanary.test ESMTP ready");
    EXPECT_EQ(server.connections(), 1);
}

TEST(FakeSmtpServerTest, RunsHealthyPlaintextDialogue) {
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false));
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    EXPECT_EQ(read_reply(socket, buffer).substr(0, 4), "220 ");
    write_line(socket, "ehlo client.test");  // expect_line ignores case
    EXPECT_EQ(read_reply(socket, buffer), "250 SMTPUTF8");
    write_line(socket, "QUIT");
    EXPECT_EQ(read_reply(socket, buffer), "221 2.0.0 Bye");
    EXPECT_EQ(read_until_closed(socket), asio::error::eof);

    EXPECT_TRUE(server.wait_for_disconnects(5s));
    EXPECT_EQ(server.received_lines(), (std::vector<std::string>{"ehlo client.test", "QUIT"}));
}

TEST(FakeSmtpServerTest, ClosesConnectionOnUnexpectedLine) {
    FakeSmtpServer server(
        {send("220 ready\r\n"), expect_line("EHLO"), send("250 unreachable\r\n")});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    read_line(socket, buffer);
    write_line(socket, "HELO client.test");

    EXPECT_EQ(read_until_closed(socket), asio::error::eof);
    EXPECT_TRUE(server.wait_for_disconnects(5s));
    EXPECT_EQ(server.received_lines(), std::vector<std::string>{"HELO client.test"});
}

TEST(FakeSmtpServerTest, RecordsLinesAfterScriptEndsUntilClientCloses) {
    FakeSmtpServer server({send("554 go away\r\n")});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    read_line(socket, buffer);
    write_line(socket, "QUIT");
    socket.close();

    EXPECT_TRUE(server.wait_for_disconnects(5s));
    EXPECT_EQ(server.received_lines(), std::vector<std::string>{"QUIT"});
}

TEST(FakeSmtpServerTest, RunsWholeScriptOnEveryConnection) {
    FakeSmtpServer server({send("220 ready\r\n"), close()});
    asio::io_context io;
    for (int attempt = 0; attempt < 3; ++attempt) {
        tcp::socket socket = connect_to(io, server.port());
        std::string buffer;
        EXPECT_EQ(read_line(socket, buffer), "220 ready");
        EXPECT_EQ(read_until_closed(socket), asio::error::eof);
    }
    EXPECT_EQ(server.connections(), 3);
}

TEST(FakeSmtpServerTest, StartTlsHandshakeVerifiesAgainstTestCa) {
    const TestPki pki;
    FakeSmtpServer server(FakeSmtpServer::healthy_script(true), {.tls = pki.issue({})});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    read_reply(socket, buffer);
    write_line(socket, "EHLO client.test");
    EXPECT_EQ(read_reply(socket, buffer), "250 STARTTLS");
    write_line(socket, "STARTTLS");
    EXPECT_EQ(read_reply(socket, buffer), "220 2.0.0 Ready to start TLS");

    asio::ssl::context context = client_tls_context(pki.ca_pem());
    asio::ssl::stream<tcp::socket&> tls(socket, context);
    ASSERT_NO_FATAL_FAILURE(client_handshake(tls, "localhost"));
    buffer.clear();
    write_line(tls, "EHLO client.test");
    EXPECT_EQ(read_reply(tls, buffer), "250 SMTPUTF8");
    write_line(tls, "QUIT");
    EXPECT_EQ(read_reply(tls, buffer), "221 2.0.0 Bye");
    boost::system::error_code shutdown_error;
    tls.shutdown(shutdown_error);  // answers the server's close_notify
    EXPECT_FALSE(shutdown_error.failed()) << shutdown_error.message();

    EXPECT_TRUE(server.wait_for_disconnects(5s));
    EXPECT_EQ(server.received_lines(), (std::vector<std::string>{"EHLO client.test", "STARTTLS",
                                                                 "EHLO client.test", "QUIT"}));
}

TEST(FakeSmtpServerTest, ImplicitTlsHandshakesBeforeBanner) {
    const TestPki pki;
    FakeSmtpServer server(FakeSmtpServer::healthy_script(false),
                          {.tls = pki.issue({}), .implicit_tls = true});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    asio::ssl::context context = client_tls_context(pki.ca_pem());
    asio::ssl::stream<tcp::socket&> tls(socket, context);
    std::string buffer;

    ASSERT_NO_FATAL_FAILURE(client_handshake(tls, "localhost"));
    EXPECT_EQ(read_line(tls, buffer), "220 fake.mailcanary.test ESMTP ready");
}

TEST(FakeSmtpServerTest, TlsCloseDoesNotWaitForSilentClient) {
    const TestPki pki;
    FakeSmtpServer server({send("220 ready\r\n"), close()},
                          {.tls = pki.issue({}), .implicit_tls = true});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    asio::ssl::context context = client_tls_context(pki.ca_pem());
    asio::ssl::stream<tcp::socket&> tls(socket, context);
    std::string buffer;
    ASSERT_NO_FATAL_FAILURE(client_handshake(tls, "localhost"));
    EXPECT_EQ(read_line(tls, buffer), "220 ready");

    // The client neither answers the close_notify nor closes; the server closes on its own.
    EXPECT_TRUE(server.wait_for_disconnects(5s));
    EXPECT_EQ(read_until_closed(socket), asio::error::eof);
}

TEST(FakeSmtpServerTest, SurvivesClientRejectingCertificate) {
    const TestPki pki;
    FakeSmtpServer server({send("220 ready\r\n"), start_tls(), send("250 secret\r\n")},
                          {.tls = TestPki::self_signed({})});
    asio::io_context io;
    {
        tcp::socket socket = connect_to(io, server.port());
        std::string buffer;
        read_line(socket, buffer);
        asio::ssl::context context = client_tls_context(pki.ca_pem());
        asio::ssl::stream<tcp::socket&> tls(socket, context);
        EXPECT_THROW(client_handshake(tls, "localhost"), boost::system::system_error);
    }
    EXPECT_TRUE(server.wait_for_disconnects(5s));

    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;
    EXPECT_EQ(read_line(socket, buffer), "220 ready");
    EXPECT_EQ(server.connections(), 2);
}

TEST(FakeSmtpServerTest, SendDrippedSendsOneByteAtATime) {
    const std::string reply = "220 slow\r\n";
    const auto gap = 20ms;
    FakeSmtpServer server({send_dripped(reply, gap)});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());

    const Clock::time_point start = Clock::now();
    std::string received;
    int reads = 0;
    while (received.size() < reply.size()) {
        char chunk[64];
        received.append(chunk, socket.read_some(asio::buffer(chunk)));
        ++reads;
    }

    EXPECT_EQ(received, reply);
    EXPECT_GT(reads, 1);
    EXPECT_GE(Clock::now() - start, (reply.size() - 1) * gap);
}

TEST(FakeSmtpServerTest, SendForeverStopsWhenClientDisconnects) {
    FakeSmtpServer server({send_forever("250-endless\r\n")});
    asio::io_context io;
    {
        tcp::socket socket = connect_to(io, server.port());
        std::string received(std::size_t{64} * 1024, '\0');
        asio::read(socket, asio::buffer(received));
        EXPECT_EQ(received.substr(0, 13), "250-endless\r\n");
    }
    EXPECT_TRUE(server.wait_for_disconnects(5s));
}

TEST(FakeSmtpServerTest, DelayPausesTheScript) {
    FakeSmtpServer server({delay(100ms), send("220 late\r\n")});
    asio::io_context io;
    tcp::socket socket = connect_to(io, server.port());
    std::string buffer;

    const Clock::time_point start = Clock::now();
    EXPECT_EQ(read_line(socket, buffer), "220 late");
    EXPECT_GE(Clock::now() - start, 90ms);  // the server's clock started a little earlier
}

TEST(FakeSmtpServerTest, RejectsTlsStepsWithoutKeyPair) {
    EXPECT_THROW(FakeSmtpServer({start_tls()}), std::invalid_argument);
    EXPECT_THROW(FakeSmtpServer({}, {.tls = std::nullopt, .implicit_tls = true}),
                 std::invalid_argument);
    EXPECT_THROW(send_forever(""), std::invalid_argument);
}

// The destructor must return at once whatever step a connected client's script is at.
struct StuckScript {
    std::string name;
    std::vector<ScriptStep> script;
    bool needs_tls = false;
};

void PrintTo(const StuckScript& stuck, std::ostream* out) { *out << stuck.name; }

class FakeSmtpServerStopTest : public testing::TestWithParam<StuckScript> {};

TEST_P(FakeSmtpServerStopTest, DestructorReturnsPromptly) {
    const TestPki pki;
    FakeServerOptions options;
    if (GetParam().needs_tls) {
        options.tls = pki.issue({});
    }
    auto server = std::make_unique<FakeSmtpServer>(GetParam().script, options);
    asio::io_context io;
    tcp::socket socket = connect_to(io, server->port());
    std::string buffer;
    EXPECT_EQ(read_line(socket, buffer), "220 ready");  // the script is running

    const Clock::time_point start = Clock::now();
    server.reset();
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(read_until_closed(socket), asio::error::eof);
}

INSTANTIATE_TEST_SUITE_P(
    StuckSteps, FakeSmtpServerStopTest,
    testing::Values(StuckScript{"Hang", {send("220 ready\r\n"), hang()}},
                    StuckScript{"LongDelay", {send("220 ready\r\n"), delay(1h)}},
                    StuckScript{"SlowDrip", {send("220 ready\r\n"), send_dripped("250 x\r\n", 1h)}},
                    StuckScript{"SendForever", {send("220 ready\r\n"), send_forever("250-x\r\n")}},
                    StuckScript{"TlsHandshake", {send("220 ready\r\n"), start_tls()}, true}),
    [](const testing::TestParamInfo<StuckScript>& stuck) { return stuck.param.name; });

// --- TestPki -------------------------------------------------------------------------------

template <auto free_function>
struct OpenSslDeleter {
    template <typename T>
    void operator()(T* object) const {
        free_function(object);
    }
};

using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;

X509Ptr parse_certificate(const std::string& pem) {
    std::unique_ptr<BIO, OpenSslDeleter<BIO_free>> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// X509_verify_cert's verdict on a server certificate, with the CA as the only trust anchor.
int verification_error(const std::string& cert_pem, const std::string& ca_pem) {
    X509Ptr cert = parse_certificate(cert_pem);
    X509Ptr ca = parse_certificate(ca_pem);
    std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>> store(X509_STORE_new());
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>> context(
        X509_STORE_CTX_new());
    if (!cert || !ca || !store || !context || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
        X509_STORE_CTX_init(context.get(), store.get(), cert.get(), nullptr) != 1) {
        return -1;
    }
    X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);  // checks serverAuth
    X509_STORE_CTX_set_flags(context.get(), X509_V_FLAG_X509_STRICT);    // as strict clients do
    X509_verify_cert(context.get());
    return X509_STORE_CTX_get_error(context.get());
}

TEST(TestPkiTest, IssuedCertificateVerifiesAgainstCa) {
    const TestPki pki;
    const KeyPair pair = pki.issue({});

    EXPECT_EQ(verification_error(pair.cert_pem, pki.ca_pem()), X509_V_OK);
    X509Ptr cert = parse_certificate(pair.cert_pem);
    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(cert.get(), "mail.example.com", 0, 0, nullptr), 0);
    EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
}

TEST(TestPkiTest, IssuedCertificateCarriesRequestedNames) {
    const TestPki pki;
    CertificateOptions options;
    options.dns_names = {"mx.example.test", "*.example.test"};
    options.ip_addresses = {"192.0.2.7"};
    X509Ptr cert = parse_certificate(pki.issue(options).cert_pem);

    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_check_host(cert.get(), "mx.example.test", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(cert.get(), "smtp.example.test", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 0);
    EXPECT_EQ(X509_check_ip_asc(cert.get(), "192.0.2.7", 0), 1);
}

TEST(TestPkiTest, SelfSignedCertificateDoesNotVerify) {
    const TestPki pki;
    EXPECT_EQ(verification_error(TestPki::self_signed({}).cert_pem, pki.ca_pem()),
              X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST(TestPkiTest, CertificateFromAnotherCaDoesNotVerify) {
    const TestPki pki;
    const TestPki other;
    EXPECT_EQ(verification_error(other.issue({}).cert_pem, pki.ca_pem()),
              X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(TestPkiTest, ExpiredCertificateReportsExpired) {
    const TestPki pki;
    CertificateOptions options;
    options.not_before = std::chrono::system_clock::now() - std::chrono::days(2);
    options.not_after = std::chrono::system_clock::now() - std::chrono::days(1);
    EXPECT_EQ(verification_error(pki.issue(options).cert_pem, pki.ca_pem()),
              X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST(TestPkiTest, WritesCaFile) {
    const TestPki pki;
    const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "test_pki_ca";
    std::filesystem::create_directories(dir);
    const std::filesystem::path path = pki.write_ca_file(dir);

    EXPECT_EQ(path, dir / "ca.pem");
    std::ifstream file(path);
    std::stringstream contents;
    contents << file.rdbuf();
    EXPECT_EQ(contents.str(), pki.ca_pem());
}

}  // namespace
}  // namespace mailcanary::test
