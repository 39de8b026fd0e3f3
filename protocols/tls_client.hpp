// TLS client setup shared by every probe: trust, minimum version, SNI, host-name verification,
// and the classification of what went wrong.
#pragma once

#include <utility>

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "protocols/failure_reason.hpp"
#include "protocols/run_metrics.hpp"
#include "protocols/tls_options.hpp"

using SSL = struct ssl_st;
using X509 = struct x509_st;
using X509_STORE_CTX = struct x509_store_ctx_st;

namespace mailcanary::tls {

// OpenSSL's number for the version, as SSL_CTX_set_min_proto_version takes it.
int openssl_version(TlsVersion version);

// Built once per target at config load. Returns null and sets `error` when the CA file cannot
// be used.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const TlsOptions& options,
                                                               std::string& error);

// SNI (for names, never for IP literals, RFC 6066 3) and the name or address the certificate
// must match. `host` is the target's host, used when server_name is empty. False when OpenSSL
// refuses the name: the handshake must not go ahead without an identity to check.
bool prepare_connection(SSL* ssl, const std::string& host, const TlsOptions& options);

// The reason for a certificate that verification rejected, from its X509_V_ERR_* code, and
// OpenSSL's words for the code.
FailureReason certificate_failure(int verify_error);
std::string describe_certificate_error(int verify_error);

// The earliest notAfter among the certificates the peer presented, read during verification
// so that it is known even when verification fails.
std::optional<std::chrono::system_clock::time_point> earliest_not_after(X509_STORE_CTX* ctx);
// What an operator checks first of a certificate: whose it is, who signed it, the names it is
// valid for and when. Each text is made safe to show (printable()): it comes from the server.
CertificateFacts certificate_facts(const X509* cert);

// After a verified handshake: the earliest notAfter in the chain that was actually verified. A
// server may still send an expired cross-signed intermediate that verification does not use.
std::optional<std::chrono::system_clock::time_point> earliest_not_after_verified(SSL* ssl);

}  // namespace mailcanary::tls
