#include "agent/web_config.hpp"

#include <crypt.h>
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "agent/basic_auth.hpp"
#include "protocols/sasl.hpp"
#include "support/files.hpp"
#include "support/test_pki.hpp"

namespace mailcanary {
namespace {

using test::TempDir;

// A bcrypt hash of `password` at the lowest cost, made by libcrypt as htpasswd -B would.
std::string bcrypt_hash(const std::string& password, const char* prefix = "$2b$") {
    std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> salt{};
    if (crypt_gensalt_rn(prefix, 4, nullptr, 0, salt.data(), salt.size()) == nullptr) return "";
    crypt_data data{};
    const char* hash = crypt_r(password.c_str(), salt.data(), &data);
    return hash != nullptr ? hash : "";
}

std::string basic(const std::string& user, const std::string& password) {
    return "Basic " + sasl::base64_encode(user + ":" + password);
}

// The located errors, "line:column: key: message", for comparing in one go.
std::vector<std::string> errors_of(std::string_view yaml, const std::string& path = "web.yml") {
    std::vector<std::string> errors;
    for (const auto& error : load_web_config_string(yaml, path).errors)
        errors.push_back(std::to_string(error.line) + ":" + std::to_string(error.column) + ": " +
                         error.key + ": " + error.message);
    return errors;
}

// A certificate, its key, a client CA and a key that belongs to nothing, in a temp dir.
class WebConfigFiles : public testing::Test {
  protected:
    void SetUp() override {
        const auto pair = pki_.issue({});
        dir_.write("tls/server.crt", pair.cert_pem);
        dir_.write("tls/server.key", pair.key_pem);
        dir_.write("tls/other.key", pki_.issue({}).key_pem);
        pki_.write_ca_file(dir_.path() / "tls");
    }

    WebConfigResult load(const std::string& yaml) {
        return load_web_config_file(dir_.write("web.yml", yaml).string());
    }

    test::TestPki pki_;
    TempDir dir_;
};

TEST_F(WebConfigFiles, ReadsTlsAndUsersWithPathsRelativeToTheFile) {
    const std::string hash = bcrypt_hash("s3cret");
    const auto result = load(
        "tls_server_config:\n"
        "  cert_file: tls/server.crt\n"
        "  key_file: tls/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: tls/ca.pem\n"
        "  min_version: TLS13\n"
        "http_server_config:\n"
        "  http2: true\n"
        "basic_auth_users:\n"
        "  prometheus: " +
        hash +
        "\n"
        "  'other user': '" +
        hash + "'\n");
    ASSERT_TRUE(result.config) << result.errors.front().to_string();
    const WebConfig& config = *result.config;
    ASSERT_TRUE(config.tls);
    EXPECT_EQ(config.tls->cert_file, (dir_.path() / "tls/server.crt").string());
    EXPECT_EQ(config.tls->key_file, (dir_.path() / "tls/server.key").string());
    EXPECT_EQ(config.tls->client_ca_file, (dir_.path() / "tls/ca.pem").string());
    EXPECT_EQ(config.tls->client_auth, ClientAuth::require_and_verify);
    EXPECT_EQ(config.tls->min_version, TlsVersion::v1_3);
    EXPECT_EQ(config.tls->max_version, TlsVersion::v1_3);
    EXPECT_NE(config.tls_context, nullptr);
    EXPECT_EQ(config.basic_auth_users.size(), 2u);
    EXPECT_EQ(config.basic_auth_users.at("other user"), hash);
}

TEST_F(WebConfigFiles, FilesThatDoNotLoadAreErrorsAtTheirSetting) {
    const auto errors = [&](const std::string& key_file, const std::string& cert_file) {
        const auto result = load("tls_server_config:\n  cert_file: " + cert_file +
                                 "\n  key_file: " + key_file + "\n");
        EXPECT_FALSE(result.config);
        std::string text;
        for (const auto& error : result.errors) text += error.to_string() + "\n";
        return text;
    };
    const std::string file = (dir_.path() / "web.yml").string();
    EXPECT_EQ(errors("tls/server.key", "tls/missing.crt"),
              file + ":2:14: tls_server_config.cert_file: cannot read " +
                  (dir_.path() / "tls/missing.crt").string() + ": No such file or directory\n");
    EXPECT_EQ(errors("tls/other.key", "tls/server.crt"),
              file +
                  ":3:13: tls_server_config.key_file: " + (dir_.path() / "tls/other.key").string() +
                  " is not the key of " + (dir_.path() / "tls/server.crt").string() + "\n");
    EXPECT_NE(
        errors("tls/server.crt", "tls/server.crt").find(":3:13: tls_server_config.key_file: "),
        std::string::npos);
}

TEST_F(WebConfigFiles, ARenewedCertificateIsServedAndABrokenOneIsNot) {
    const auto result = load(
        "tls_server_config:\n  cert_file: tls/server.crt\n"
        "  key_file: tls/server.key\n");
    ASSERT_TRUE(result.config);
    const auto first = result.config->tls_context->current();
    EXPECT_EQ(result.config->tls_context->current(), first) << "unchanged files: same context";

    // A certificate renewed before its key: the pair does not match, the old context stays.
    const auto renewed = pki_.issue({});
    dir_.write("tls/server.crt", renewed.cert_pem + "\n");
    EXPECT_EQ(result.config->tls_context->current(), first);
    dir_.write("tls/server.key", renewed.key_pem);
    EXPECT_NE(result.config->tls_context->current(), first);
}

TEST(WebConfig, AnEmptyFileProtectsNothing) {
    const auto result = load_web_config_string("", "web.yml");
    ASSERT_TRUE(result.config);
    EXPECT_FALSE(result.config->tls);
    EXPECT_TRUE(result.config->basic_auth_users.empty());
}

struct BadWebConfig {
    const char* name;
    std::string yaml;
    std::vector<std::string> errors;
};

void PrintTo(const BadWebConfig& bad, std::ostream* out) { *out << bad.name; }

class WebConfigErrors : public testing::TestWithParam<BadWebConfig> {};

TEST_P(WebConfigErrors, AreLocated) { EXPECT_EQ(errors_of(GetParam().yaml), GetParam().errors); }

INSTANTIATE_TEST_SUITE_P(
    Cases, WebConfigErrors,
    testing::Values(
        BadWebConfig{"Syntax",
                     "basic_auth_users: [a\n",
                     {"2:1: : not valid YAML: end of sequence flow not found"}},
        BadWebConfig{"NotAMapping", "- a\n", {"1:1: : expected a mapping of keys to values"}},
        BadWebConfig{"UnknownKeyWithSuggestion",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_versoin: TLS13\n",
                     {"4:3: tls_server_config.min_versoin: unknown key; did you mean "
                      "\"min_version\"?"}},
        BadWebConfig{"UnknownTopKey",
                     "basic_auth_user: {}\n",
                     {"1:1: basic_auth_user: unknown key; did you mean \"basic_auth_users\"?"}},
        BadWebConfig{"UnsupportedKey",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [X]\n",
                     {"4:3: tls_server_config.cipher_suites: not supported: OpenSSL's defaults "
                      "(the system's policy) apply"}},
        BadWebConfig{"RateLimit",
                     "rate_limit:\n  burst: 1\n",
                     {"1:1: rate_limit: not supported: limit requests in front of the agent if "
                      "you need to"}},
        BadWebConfig{"RepeatedKey",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_file: c\n",
                     {"4:3: tls_server_config.cert_file: repeated key"}},
        BadWebConfig{"ClientAuthType",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n"
                     "  client_auth_type: RequireClientCerts\n",
                     {"4:21: tls_server_config.client_auth_type: \"RequireClientCerts\" is not one "
                      "of NoClientCert, RequestClientCert, RequireAnyClientCert, "
                      "VerifyClientCertIfGiven, RequireAndVerifyClientCert"}},
        BadWebConfig{"MissingKeyFile",
                     "tls_server_config:\n  cert_file: a\n",
                     {"2:3: tls_server_config: key_file is required"}},
        BadWebConfig{"VerifyWithoutCa",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n"
                     "  client_auth_type: VerifyClientCertIfGiven\n",
                     {"4:21: tls_server_config.client_auth_type: verifying client certificates "
                      "needs client_ca_file"}},
        BadWebConfig{"CaWithoutPolicy",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
                     {"4:19: tls_server_config.client_ca_file: client_ca_file is set but "
                      "client_auth_type is NoClientCert: set client_auth_type "
                      "(RequireAndVerifyClientCert to require a certificate)"}},
        BadWebConfig{"Versions",
                     "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
                     "  max_version: TLS12\n",
                     {"5:16: tls_server_config.max_version: is lower than min_version"}},
        BadWebConfig{"NotBcrypt",
                     "basic_auth_users:\n  alice: plain-password\n",
                     {"2:10: basic_auth_users.alice: expected a bcrypt hash such as htpasswd "
                      "-nBC 10 \"\" makes: $2y$10$ and 53 characters"}},
        BadWebConfig{"ColonInUser",
                     "basic_auth_users:\n  'a:b': "
                     "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\n",
                     {"2:3: basic_auth_users.a:b: a user name cannot hold ':' or control "
                      "characters (Basic authentication could not carry it)"}},
        BadWebConfig{"Http2NotBool",
                     "http_server_config:\n  http2: maybe\n",
                     {"2:10: http_server_config.http2: expected true or false"}},
        BadWebConfig{"AllAtOnce",
                     "tls_server_config:\n  key_file: b\n  curve_preferences: []\n"
                     "basic_auth_users:\n  bob: x\n",
                     {"2:3: tls_server_config: cert_file is required",
                      "3:3: tls_server_config.curve_preferences: not supported: OpenSSL's "
                      "defaults apply",
                      "5:8: basic_auth_users.bob: expected a bcrypt hash such as htpasswd -nBC 10 "
                      "\"\" makes: $2y$10$ and 53 characters"}}),
    [](const auto& test_case) { return std::string(test_case.param.name); });

TEST(Bcrypt, HashesAreCheckedForTheirShape) {
    EXPECT_FALSE(bcrypt_hash_problem(bcrypt_hash("x")));
    EXPECT_FALSE(
        bcrypt_hash_problem("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
    EXPECT_EQ(bcrypt_hash_problem("$2y$03$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"),
              "bcrypt cost 03 is not from 04 to 31");
    EXPECT_TRUE(
        bcrypt_hash_problem("$2x$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"));
    EXPECT_TRUE(bcrypt_hash_problem("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7z"));
    EXPECT_TRUE(
        bcrypt_hash_problem("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7z!"));
    EXPECT_TRUE(bcrypt_hash_problem("$6$salt$hash"));
}

TEST(Bcrypt, VerifiesTheRightPasswordOnly) {
    for (const char* prefix : {"$2b$", "$2a$", "$2y$"}) {
        const std::string hash = bcrypt_hash("correct horse", prefix);
        ASSERT_EQ(hash.substr(0, 4), prefix);
        EXPECT_TRUE(bcrypt_matches("correct horse", hash)) << prefix;
        EXPECT_FALSE(bcrypt_matches("correct hors", hash)) << prefix;
        EXPECT_FALSE(bcrypt_matches("", hash)) << prefix;
        EXPECT_FALSE(bcrypt_matches(std::string("correct horse\0x", 15), hash)) << prefix;
    }
}

TEST(ConstantTimeCompare, ComparesContentsAndLengths) {
    EXPECT_TRUE(equal_in_constant_time("", ""));
    EXPECT_TRUE(equal_in_constant_time("abc", "abc"));
    EXPECT_FALSE(equal_in_constant_time("abc", "abd"));
    EXPECT_FALSE(equal_in_constant_time("abc", "abcd"));
    EXPECT_FALSE(equal_in_constant_time("xbc", "abc"));
}

TEST(BasicAuthorization, ParsesTheHeader) {
    const auto credentials = parse_basic_authorization(basic("alice", "pa:ss word"));
    ASSERT_TRUE(credentials);
    EXPECT_EQ(credentials->user, "alice");
    EXPECT_EQ(credentials->password, "pa:ss word");
    EXPECT_TRUE(parse_basic_authorization("basic " + sasl::base64_encode("a:b")));
    EXPECT_FALSE(parse_basic_authorization("Bearer abc"));
    EXPECT_FALSE(parse_basic_authorization("Basic !!!!"));
    EXPECT_FALSE(parse_basic_authorization("Basic " + sasl::base64_encode("no colon")));
    EXPECT_FALSE(parse_basic_authorization(""));
}

TEST(BasicAuth, AllowsTheRightPasswordAndCachesOnlyThat) {
    const BasicAuth auth({{"alice", bcrypt_hash("s3cret")}});
    EXPECT_TRUE(auth.allows(basic("alice", "s3cret")));
    EXPECT_EQ(auth.bcrypt_runs(), 1u);
    EXPECT_TRUE(auth.allows(basic("alice", "s3cret")));
    EXPECT_EQ(auth.bcrypt_runs(), 1u) << "a verified password is not verified again";

    EXPECT_FALSE(auth.allows(basic("alice", "wrong")));
    EXPECT_FALSE(auth.allows(basic("alice", "wrong")));
    EXPECT_EQ(auth.bcrypt_runs(), 3u) << "a wrong password pays bcrypt every time";

    EXPECT_FALSE(auth.allows(basic("mallory", "s3cret")));
    EXPECT_EQ(auth.bcrypt_runs(), 4u) << "an unknown user costs a bcrypt like a known one";
    EXPECT_FALSE(auth.allows("Basic " + sasl::base64_encode("alice")));
    EXPECT_FALSE(auth.allows(""));
}

TEST(BasicAuth, TheCacheIsBounded) {
    std::map<std::string, std::string, std::less<>> users;
    const std::string hash = bcrypt_hash("pw");
    for (std::size_t i = 0; i <= BasicAuth::kCacheCapacity; ++i)
        users.emplace("user" + std::to_string(i), hash);
    const BasicAuth auth(users);
    for (std::size_t i = 0; i <= BasicAuth::kCacheCapacity; ++i)
        ASSERT_TRUE(auth.allows(basic("user" + std::to_string(i), "pw")));
    const std::size_t runs = auth.bcrypt_runs();
    EXPECT_EQ(runs, BasicAuth::kCacheCapacity + 1);
    EXPECT_TRUE(auth.allows(basic("user" + std::to_string(BasicAuth::kCacheCapacity), "pw")));
    EXPECT_EQ(auth.bcrypt_runs(), runs) << "the newest is cached";
    EXPECT_TRUE(auth.allows(basic("user0", "pw")));
    EXPECT_EQ(auth.bcrypt_runs(), runs + 1) << "the oldest made room";
}

}  // namespace
}  // namespace mailcanary
