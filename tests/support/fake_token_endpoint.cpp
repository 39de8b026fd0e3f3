#include "support/fake_token_endpoint.hpp"

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <thread>

namespace mailcanary::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

}  // namespace

struct FakeTokenEndpoint::State {
    asio::io_context io;
    asio::ssl::context tls{asio::ssl::context::tls_server};
    tcp::acceptor acceptor{io};
    std::vector<Answer> answers;
    mutable std::mutex mutex;
    std::vector<std::string> requests;
    std::thread thread;

    // One connection at a time, synchronously: the tests make one request at a time.
    void serve() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket(io);
            acceptor.accept(socket, ec);
            if (ec) return;  // the acceptor was closed: stop
            asio::ssl::stream<tcp::socket> stream(std::move(socket), tls);
            stream.handshake(asio::ssl::stream_base::server, ec);
            if (ec) continue;
            beast::flat_buffer buffer;
            http::request<http::string_body> request;
            http::read(stream, buffer, request, ec);
            if (ec) continue;
            Answer answer;
            {
                std::lock_guard lock(mutex);
                answer = answers[std::min(requests.size(), answers.size() - 1)];
                requests.push_back(request.body());
            }
            std::this_thread::sleep_for(answer.delay);
            http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                                       11};
            response.set(http::field::content_type, "application/json");
            response.body() = answer.body;
            response.prepare_payload();
            http::write(stream, response, ec);
            stream.shutdown(ec);
        }
    }
};

FakeTokenEndpoint::FakeTokenEndpoint(KeyPair key, std::vector<Answer> answers)
    : state_(std::make_shared<State>()) {
    state_->answers = std::move(answers);
    state_->tls.use_certificate_chain(asio::buffer(key.cert_pem));
    state_->tls.use_private_key(asio::buffer(key.key_pem), asio::ssl::context::pem);
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(endpoint.protocol());
    state_->acceptor.bind(endpoint);
    state_->acceptor.listen();
    state_->thread = std::thread([state = state_] { state->serve(); });
}

FakeTokenEndpoint::~FakeTokenEndpoint() {
    boost::system::error_code ignored;
    // Closing from another thread does not interrupt a blocking accept on Linux: shut it down.
    ::shutdown(state_->acceptor.native_handle(), SHUT_RDWR);
    state_->thread.join();
    state_->acceptor.close(ignored);
}

std::string FakeTokenEndpoint::url() const {
    return "https://127.0.0.1:" + std::to_string(state_->acceptor.local_endpoint().port()) +
           "/token";
}

std::vector<std::string> FakeTokenEndpoint::requests() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests;
}

}  // namespace mailcanary::test
