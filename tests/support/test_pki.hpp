// Certificates made at test time: a private CA and leaf certificates, all EC P-256 keys.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace mailcanary::test {

struct CertificateOptions {
    std::vector<std::string> dns_names{"localhost"};
    std::vector<std::string> ip_addresses{"127.0.0.1", "::1"};  // textual IPv4 or IPv6
    std::chrono::system_clock::time_point not_before =
        std::chrono::system_clock::now() - std::chrono::hours(1);
    std::chrono::system_clock::time_point not_after =
        std::chrono::system_clock::now() + std::chrono::days(30);
};

struct KeyPair {
    std::string cert_pem;
    std::string key_pem;  // unencrypted PKCS#8
};

// A private certificate authority. Throws std::runtime_error when OpenSSL fails.
class TestPki {
  public:
    TestPki();

    const std::string& ca_pem() const;

    // A server certificate signed by the CA: the options' SANs, serverAuth extended key usage.
    KeyPair issue(const CertificateOptions& options) const;

    // The same kind of server certificate, but signed by its own key instead of the CA.
    static KeyPair self_signed(const CertificateOptions& options);

    // Writes the CA certificate to dir/ca.pem and returns that path.
    std::string write_ca_file(const std::filesystem::path& dir) const;

  private:
    KeyPair ca_;
};

}  // namespace mailcanary::test
