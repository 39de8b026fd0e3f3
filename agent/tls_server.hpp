// The HTTP server's TLS side: an OpenSSL server context made from a tls_server_config, made
// again when its files change, so that a renewed certificate is served without a restart.
#pragma once

#include <utility>  // before any Boost header: Boost 1.74 coroutines with g++ 12

#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocols/tls_options.hpp"

namespace mailcanary {

// Go's tls.ClientAuthType, by its exporter-toolkit name.
enum class ClientAuth {
    none,                // NoClientCert
    request,             // RequestClientCert: asked for, not required, not verified
    require_any,         // RequireAnyClientCert: required, not verified
    verify_if_given,     // VerifyClientCertIfGiven
    require_and_verify,  // RequireAndVerifyClientCert
};

struct TlsServerConfig {
    std::string cert_file;
    std::string key_file;
    std::string client_ca_file;  // empty: none
    ClientAuth client_auth = ClientAuth::none;
    TlsVersion min_version = TlsVersion::v1_2;
    TlsVersion max_version = TlsVersion::v1_3;
};

// Why a context could not be made, and which setting is at fault.
struct TlsSetupError {
    std::string key;  // "cert_file", "key_file" or "client_ca_file"
    std::string message;
};

class TlsServerContext {
  public:
    // Loads the files; on failure returns null and sets `error`.
    static std::shared_ptr<TlsServerContext> load(const TlsServerConfig& config,
                                                  TlsSetupError& error);

    // The context for a new connection. When a file changed since the last load (its
    // modification time or size), the context is made again; if the files do not load now (a
    // certificate renewed before its key), the previous context stays and the problem is logged
    // once per change.
    std::shared_ptr<boost::asio::ssl::context> current();

  private:
    struct FileStamp {
        std::filesystem::file_time_type modified;
        std::uintmax_t size = 0;
        bool operator==(const FileStamp&) const = default;
    };

    TlsServerContext(TlsServerConfig config, std::shared_ptr<boost::asio::ssl::context> context);
    std::vector<std::optional<FileStamp>> stamp_files() const;

    TlsServerConfig config_;
    std::shared_ptr<boost::asio::ssl::context> context_;
    std::vector<std::optional<FileStamp>> stamps_;  // as of the last load attempt
};

}  // namespace mailcanary
