#include "support/test_pki.hpp"

#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace mailcanary::test {
namespace {

template <auto free_function>
struct OpenSslDeleter {
    template <typename T>
    void operator()(T* object) const {
        free_function(object);
    }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;

using TimePoint = std::chrono::system_clock::time_point;

[[noreturn]] void throw_openssl_error(const std::string& what) {
    std::string message = "TestPki: " + what;
    while (unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        message += "; ";
        message += text;
    }
    throw std::runtime_error(message);
}

void check(bool ok, const std::string& what) {
    if (!ok) {
        throw_openssl_error(what);
    }
}

template <typename T>
T check_not_null(T pointer, const std::string& what) {
    check(pointer != nullptr, what);
    return pointer;
}

KeyPtr generate_key() { return KeyPtr(check_not_null(EVP_EC_gen("P-256"), "EC key generation")); }

std::string bio_contents(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::string to_pem(X509* cert) {
    BioPtr bio(check_not_null(BIO_new(BIO_s_mem()), "BIO_new"));
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
    return bio_contents(bio.get());
}

std::string to_pem(EVP_PKEY* key) {
    BioPtr bio(check_not_null(BIO_new(BIO_s_mem()), "BIO_new"));
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    return bio_contents(bio.get());
}

BioPtr read_only_bio(const std::string& pem) {
    return BioPtr(check_not_null(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                 "BIO_new_mem_buf"));
}

X509Ptr parse_certificate(const std::string& pem) {
    BioPtr bio = read_only_bio(pem);
    return X509Ptr(check_not_null(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                  "PEM_read_bio_X509"));
}

KeyPtr parse_key(const std::string& pem) {
    BioPtr bio = read_only_bio(pem);
    return KeyPtr(check_not_null(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
                                 "PEM_read_bio_PrivateKey"));
}

void set_time(ASN1_TIME* field, TimePoint when) {
    check_not_null(ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(when)),
                   "ASN1_TIME_set");
}

// Distinct serials keep verifiers that cache by issuer and serial from mixing certificates up.
uint64_t random_serial() {
    uint64_t serial = 0;
    check(RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) == 1, "RAND_bytes");
    return (serial >> 1) | 1;  // positive and non-zero, as RFC 5280 asks
}

// A certificate with subject, validity and public key set; issuer and signature come later.
X509Ptr new_certificate(EVP_PKEY* key, const std::string& common_name, TimePoint not_before,
                        TimePoint not_after) {
    X509Ptr cert(check_not_null(X509_new(), "X509_new"));
    check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
    check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), random_serial()) == 1,
          "serial number");
    X509_NAME* subject = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                     -1, -1, 0) == 1,
          "subject common name");
    set_time(X509_getm_notBefore(cert.get()), not_before);
    set_time(X509_getm_notAfter(cert.get()), not_after);
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
    return cert;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    ExtensionPtr extension(check_not_null(X509V3_EXT_nconf_nid(nullptr, &context, nid, value),
                                          std::string("extension ") + OBJ_nid2sn(nid)));
    check(X509_add_ext(cert, extension.get(), -1) == 1, "X509_add_ext");
}

// Built name by name rather than from a "DNS:a,IP:b" string, so no name needs escaping.
void add_subject_alt_names(X509* cert, const CertificateOptions& options) {
    if (options.dns_names.empty() && options.ip_addresses.empty()) {
        return;
    }
    GeneralNamesPtr names(check_not_null(GENERAL_NAMES_new(), "GENERAL_NAMES_new"));
    auto append = [&](int type, ASN1_STRING* value) {
        GENERAL_NAME* name = GENERAL_NAME_new();
        if (name == nullptr) {
            ASN1_STRING_free(value);
            throw_openssl_error("GENERAL_NAME_new");
        }
        GENERAL_NAME_set0_value(name, type, value);
        if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
            GENERAL_NAME_free(name);
            throw_openssl_error("sk_GENERAL_NAME_push");
        }
    };
    for (const std::string& dns_name : options.dns_names) {
        ASN1_IA5STRING* value = check_not_null(ASN1_IA5STRING_new(), "ASN1_IA5STRING_new");
        if (ASN1_STRING_set(value, dns_name.data(), static_cast<int>(dns_name.size())) != 1) {
            ASN1_IA5STRING_free(value);
            throw_openssl_error("DNS name " + dns_name);
        }
        append(GEN_DNS, value);
    }
    for (const std::string& ip_address : options.ip_addresses) {
        append(GEN_IPADD,
               check_not_null(a2i_IPADDRESS(ip_address.c_str()), "IP address " + ip_address));
    }
    check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1,
          "subjectAltName");
}

// A server certificate for the options, signed by issuer_key; a null issuer means self-signed.
KeyPair make_server_certificate(const CertificateOptions& options, X509* issuer,
                                EVP_PKEY* issuer_key) {
    KeyPtr key = generate_key();
    const std::string common_name =
        options.dns_names.empty() ? "mailcanary test server" : options.dns_names.front();
    X509Ptr cert = new_certificate(key.get(), common_name, options.not_before, options.not_after);
    X509* signer = issuer != nullptr ? issuer : cert.get();
    check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1,
          "X509_set_issuer_name");
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (issuer != nullptr) {
        add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    }
    add_subject_alt_names(cert.get(), options);
    EVP_PKEY* signing_key = issuer_key != nullptr ? issuer_key : key.get();
    check(X509_sign(cert.get(), signing_key, EVP_sha256()) > 0, "X509_sign");
    return KeyPair{to_pem(cert.get()), to_pem(key.get())};
}

}  // namespace

TestPki::TestPki() {
    const TimePoint now = std::chrono::system_clock::now();
    KeyPtr key = generate_key();
    X509Ptr cert = new_certificate(key.get(), "mailcanary test CA", now - std::chrono::hours(1),
                                   now + std::chrono::years(1));
    check(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) == 1,
          "X509_set_issuer_name");
    add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");
    ca_ = KeyPair{to_pem(cert.get()), to_pem(key.get())};
}

const std::string& TestPki::ca_pem() const { return ca_.cert_pem; }

KeyPair TestPki::issue(const CertificateOptions& options) const {
    X509Ptr ca_cert = parse_certificate(ca_.cert_pem);
    KeyPtr ca_key = parse_key(ca_.key_pem);
    return make_server_certificate(options, ca_cert.get(), ca_key.get());
}

KeyPair TestPki::self_signed(const CertificateOptions& options) {
    return make_server_certificate(options, nullptr, nullptr);
}

std::string TestPki::write_ca_file(const std::filesystem::path& dir) const {
    const std::filesystem::path path = dir / "ca.pem";
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << ca_.cert_pem;
    file.close();
    if (!file) {
        throw std::runtime_error("TestPki: cannot write " + path.string());
    }
    return path.string();
}

}  // namespace mailcanary::test
