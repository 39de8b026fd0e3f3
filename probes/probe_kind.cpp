#include "probes/probe_kind.hpp"

#include "protocols/tls_contexts.hpp"

namespace mailcanary {

bool LoadContext::complete_endpoint(Endpoint& endpoint, const std::string& key) {
    endpoint.resolver = resolver;
    if (endpoint.tls == TlsMode::none) return true;
    std::string problem;
    endpoint.tls_context = tls.get(endpoint.tls_options, problem);
    if (endpoint.tls_context) return true;
    errors.push_back({file, 0, 0, key + ".tls_options.ca_file", problem});
    return false;
}

std::optional<CredentialSource> LoadContext::load_login(const AuthConfig& auth,
                                                        const std::string& key) {
    std::string problem;
    auto login = CredentialSource::load(auth, problem);
    if (!login) errors.push_back({file, 0, 0, key, problem});
    return login;
}

}  // namespace mailcanary
