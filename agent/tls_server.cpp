#include "agent/tls_server.hpp"

#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/log.hpp"
#include "protocols/tls_client.hpp"

namespace mailcanary {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's messages for a missing file are vague ("system lib"): say it plainly first.
std::optional<std::string> unreadable(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return "cannot read " + path + ": is a directory";
    if (std::ifstream file(path, std::ios::binary); !file.is_open())
        return "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
}

std::shared_ptr<ssl::context> make_context(const TlsServerConfig& config, TlsSetupError& error) {
    const auto fail = [&](std::string key, std::string message) {
        error = {std::move(key), std::move(message)};
        return nullptr;
    };
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                         ssl::context::single_dh_use);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_min_proto_version(native, tls::openssl_version(config.min_version));
    SSL_CTX_set_max_proto_version(native, tls::openssl_version(config.max_version));

    if (auto problem = unreadable(config.cert_file)) return fail("cert_file", *problem);
    if (auto problem = unreadable(config.key_file)) return fail("key_file", *problem);
    // The key first: OpenSSL then takes a certificate that does not match it without a word,
    // and the check below can say plainly what is wrong.
    boost::system::error_code ec;
    context->use_private_key_file(config.key_file, ssl::context::pem, ec);
    if (ec) return fail("key_file", config.key_file + ": not a PEM private key: " + ec.message());
    context->use_certificate_chain_file(config.cert_file, ec);
    if (ec) return fail("cert_file", config.cert_file + ": not a PEM certificate: " + ec.message());
    if (SSL_CTX_check_private_key(native) != 1)
        return fail("key_file", config.key_file + " is not the key of " + config.cert_file);

    if (!config.client_ca_file.empty()) {
        if (auto problem = unreadable(config.client_ca_file))
            return fail("client_ca_file", *problem);
        context->load_verify_file(config.client_ca_file, ec);
        if (ec) {
            return fail("client_ca_file",
                        config.client_ca_file + ": not PEM certificates: " + ec.message());
        }
        // Tells clients which CAs are accepted, so that one holding several picks the right one.
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str()))
            SSL_CTX_set_client_CA_list(native, names);
    }
    const bool verified = config.client_auth == ClientAuth::verify_if_given ||
                          config.client_auth == ClientAuth::require_and_verify;
    const bool required = config.client_auth == ClientAuth::require_any ||
                          config.client_auth == ClientAuth::require_and_verify;
    if (config.client_auth != ClientAuth::none) {
        context->set_verify_mode(ssl::verify_peer |
                                 (required ? ssl::verify_fail_if_no_peer_cert : ssl::verify_none));
        // Request and RequireAny take whatever certificate comes, as Go's do.
        if (!verified)
            context->set_verify_callback([](bool, ssl::verify_context&) { return true; });
    }
    return context;
}

}  // namespace

std::shared_ptr<TlsServerContext> TlsServerContext::load(const TlsServerConfig& config,
                                                         TlsSetupError& error) {
    auto context = make_context(config, error);
    if (!context) return nullptr;
    std::shared_ptr<TlsServerContext> loaded(new TlsServerContext(config, std::move(context)));
    loaded->stamps_ = loaded->stamp_files();
    return loaded;
}

TlsServerContext::TlsServerContext(TlsServerConfig config,
                                   std::shared_ptr<boost::asio::ssl::context> context)
    : config_(std::move(config)), context_(std::move(context)) {}

std::vector<std::optional<TlsServerContext::FileStamp>> TlsServerContext::stamp_files() const {
    std::vector<std::optional<FileStamp>> stamps;
    for (const std::string* path :
         {&config_.cert_file, &config_.key_file, &config_.client_ca_file}) {
        std::error_code ec;
        FileStamp stamp;
        stamp.modified = std::filesystem::last_write_time(*path, ec);
        if (!ec) stamp.size = std::filesystem::file_size(*path, ec);
        stamps.push_back(ec ? std::nullopt : std::optional(stamp));
    }
    return stamps;
}

std::shared_ptr<boost::asio::ssl::context> TlsServerContext::current() {
    auto stamps = stamp_files();
    if (stamps == stamps_) return context_;
    stamps_ = std::move(stamps);
    TlsSetupError error;
    if (auto context = make_context(config_, error)) {
        context_ = std::move(context);
        log::info("TLS files changed: serving the new certificate",
                  {{"cert_file", config_.cert_file}});
    } else {
        log::error("TLS files changed but do not load; serving the previous certificate",
                   {{"setting", "tls_server_config." + error.key}, {"error", error.message}});
    }
    return context_;
}

}  // namespace mailcanary
