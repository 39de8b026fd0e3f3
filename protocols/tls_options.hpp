// How a connection uses TLS: the mode, and what the client checks of the server.
#pragma once

#include <string>

namespace mailcanary {

enum class TlsMode { none, starttls, implicit };

enum class TlsVersion { v1_0, v1_1, v1_2, v1_3 };

struct TlsOptions {
    std::string ca_file;      // empty: the system trust store
    std::string server_name;  // empty: the target's host (SNI and verification)
    bool insecure_skip_verify = false;
    TlsVersion min_version = TlsVersion::v1_2;

    bool operator==(const TlsOptions&) const = default;
};

}  // namespace mailcanary
