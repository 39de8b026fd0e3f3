#include "protocols/tls_client.hpp"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <ctime>
#include <memory>

#include "common/transcript.hpp"

namespace mailcanary::tls {

int openssl_version(TlsVersion version) {
    switch (version) {
        case TlsVersion::v1_0:
            return TLS1_VERSION;
        case TlsVersion::v1_1:
            return TLS1_1_VERSION;
        case TlsVersion::v1_2:
            return TLS1_2_VERSION;
        case TlsVersion::v1_3:
            return TLS1_3_VERSION;
    }
    return TLS1_2_VERSION;
}

namespace {

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    return !ec;
}

std::optional<std::chrono::system_clock::time_point> time_of(const ASN1_TIME* time) {
    std::tm tm{};
    if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::optional<std::chrono::system_clock::time_point> not_after(const X509* cert) {
    if (cert == nullptr) return std::nullopt;
    return time_of(X509_get0_notAfter(cert));
}

std::string one_line(const X509_NAME* name) {
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return printable(std::string_view(data, static_cast<std::size_t>(size)));
}

std::vector<std::string> alt_names(const X509* cert) {
    std::vector<std::string> names;
    auto* general =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (general == nullptr) return names;
    for (int i = 0; i < sk_GENERAL_NAME_num(general); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(general, i);
        if (name->type == GEN_DNS) {
            const ASN1_STRING* text = name->d.dNSName;
            names.push_back(printable(
                std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                 static_cast<std::size_t>(ASN1_STRING_length(text)))));
        } else if (name->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* bytes = name->d.iPAddress;
            const unsigned char* data = ASN1_STRING_get0_data(bytes);
            if (ASN1_STRING_length(bytes) == 4) {
                std::array<unsigned char, 4> v4{};
                std::copy_n(data, v4.size(), v4.begin());
                names.push_back(boost::asio::ip::address_v4(v4).to_string());
            } else if (ASN1_STRING_length(bytes) == 16) {
                std::array<unsigned char, 16> v6{};
                std::copy_n(data, v6.size(), v6.begin());
                names.push_back(boost::asio::ip::address_v6(v6).to_string());
            }
        }
    }
    GENERAL_NAMES_free(general);
    return names;
}

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_client_context(const TlsOptions& options,
                                                               std::string& error) {
    auto context =
        std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_min_proto_version(native, openssl_version(options.min_version));
    // Verification always runs, even with insecure_skip_verify, so the certificate's expiry is
    // still read; the verify callback decides whether a failure counts.
    context->set_verify_mode(boost::asio::ssl::verify_peer);
    boost::system::error_code ec;
    if (options.ca_file.empty()) {
        context->set_default_verify_paths(ec);
    } else {
        context->load_verify_file(options.ca_file, ec);
    }
    if (ec) {
        error = "cannot load trust anchors" +
                (options.ca_file.empty() ? std::string() : " from " + options.ca_file) + ": " +
                ec.message();
        return nullptr;
    }
    return context;
}

bool prepare_connection(SSL* ssl, const std::string& host, const TlsOptions& options) {
    const std::string& name = options.server_name.empty() ? host : options.server_name;
    // A name OpenSSL refuses (a scoped IPv6 address, say) must fail the run: without it no
    // identity would be checked at all.
    if (is_ip_literal(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
    return SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
           SSL_set1_host(ssl, name.c_str()) == 1;
}

FailureReason certificate_failure(int verify_error) {
    switch (verify_error) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return FailureReason::tls_cert_expired;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return FailureReason::tls_cert_hostname;
        default:
            return FailureReason::tls_cert_untrusted;
    }
}

std::string describe_certificate_error(int verify_error) {
    return X509_verify_cert_error_string(verify_error);
}

CertificateFacts certificate_facts(const X509* cert) {
    CertificateFacts facts;
    if (cert == nullptr) return facts;
    facts.subject = one_line(X509_get_subject_name(cert));
    facts.issuer = one_line(X509_get_issuer_name(cert));
    facts.alt_names = alt_names(cert);
    facts.not_before = time_of(X509_get0_notBefore(cert)).value_or(facts.not_before);
    facts.not_after = time_of(X509_get0_notAfter(cert)).value_or(facts.not_after);
    return facts;
}

std::optional<std::chrono::system_clock::time_point> earliest_not_after_verified(SSL* ssl) {
    STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
    if (chain == nullptr || sk_X509_num(chain) == 0) return std::nullopt;
    std::optional<std::chrono::system_clock::time_point> earliest;
    for (int i = 0; i < sk_X509_num(chain); ++i) {
        const auto expiry = not_after(sk_X509_value(chain, i));
        if (expiry && (!earliest || *expiry < *earliest)) earliest = expiry;
    }
    return earliest;
}

std::optional<std::chrono::system_clock::time_point> earliest_not_after(X509_STORE_CTX* ctx) {
    auto earliest = not_after(X509_STORE_CTX_get0_cert(ctx));
    if (STACK_OF(X509)* presented = X509_STORE_CTX_get0_untrusted(ctx)) {
        for (int i = 0; i < sk_X509_num(presented); ++i) {
            const auto expiry = not_after(sk_X509_value(presented, i));
            if (expiry && (!earliest || *expiry < *earliest)) earliest = expiry;
        }
    }
    return earliest;
}

}  // namespace mailcanary::tls
