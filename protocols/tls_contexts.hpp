// TLS client contexts of one configuration load, one per trust store and minimum version: a
// context costs about 18 KB and a millisecond to build, and targets mostly share a few. What
// differs per connection (SNI, the name to verify, insecure_skip_verify) is set on each
// connection. A new set at every load, so a rotated CA file counts from the reload.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "protocols/tls_client.hpp"
#include "protocols/tls_options.hpp"

namespace mailcanary {

class TlsContexts {
  public:
    // Null, with `problem`, when the trust store cannot be loaded.
    std::shared_ptr<boost::asio::ssl::context> get(const TlsOptions& options,
                                                   std::string& problem) {
        auto& context = contexts_[{options.ca_file, options.min_version}];
        if (!context) context = tls::make_client_context(options, problem);
        return context;
    }

  private:
    std::map<std::pair<std::string, TlsVersion>, std::shared_ptr<boost::asio::ssl::context>>
        contexts_;
};

}  // namespace mailcanary
