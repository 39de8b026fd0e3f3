// An in-process HTTPS OAuth2 token endpoint for tests: answers every POST with a scripted status
// and body, and records the request bodies it received.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/test_pki.hpp"

namespace mailcanary::test {

class FakeTokenEndpoint {
  public:
    struct Answer {
        unsigned status = 200;
        std::string body;
        std::chrono::milliseconds delay{0};
    };

    // `key` is the server's certificate and key (issued for localhost / 127.0.0.1).
    FakeTokenEndpoint(KeyPair key, std::vector<Answer> answers);
    ~FakeTokenEndpoint();
    FakeTokenEndpoint(const FakeTokenEndpoint&) = delete;
    FakeTokenEndpoint& operator=(const FakeTokenEndpoint&) = delete;

    std::string url() const;  // https://127.0.0.1:PORT/token
    // Request bodies received, in order (the last answer repeats once the list is used up).
    std::vector<std::string> requests() const;

  private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace mailcanary::test
