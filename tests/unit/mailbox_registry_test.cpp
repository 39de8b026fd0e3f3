// Which targets share a mailbox tracker, and the `mailbox` label that tells trackers apart
// (docs/metrics.md, mailcanary_roundtrip_leftovers_removed_total). The io_context never runs:
// the trackers are created and labelled, never connected.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "probes/mailbox_registry.hpp"
#include "protocols/dns_resolver.hpp"

namespace mailcanary {
namespace {

class NoEvents final : public RoundtripEvents {
  public:
    void message_late(const std::string& /*target*/) override {}
    void leftover_removed(const std::string& /*mailbox*/) override {}
    void pending_changed(const std::string& /*target*/, std::size_t /*pending*/) override {}
};

// A mailbox as the roundtrip probe describes it; the token file stands for the login's secret.
MailboxSettings mailbox(uint16_t port, const std::string& token_file = "/run/token") {
    MailboxSettings settings;
    settings.endpoint.host = "imap.example.test";
    settings.endpoint.port = port;
    settings.client.credentials.username = "probe@example.test";
    AuthConfig auth;
    auth.username = "probe@example.test";
    auth.token_file = token_file;
    std::string problem;
    settings.login =
        std::make_shared<const CredentialSource>(*CredentialSource::load(auth, problem));
    settings.label = "probe@example.test@imap.example.test:" + std::to_string(port) + "/INBOX";
    return settings;
}

class MailboxRegistryTest : public testing::Test {
  protected:
    std::shared_ptr<MailboxTracker> attach(MailboxSettings settings, const std::string& target) {
        return registry_.attach(std::move(settings), std::chrono::minutes(2), target);
    }

    boost::asio::io_context io_;
    NoEvents events_;
    MailboxRegistry registry_{io_.get_executor(), events_};
};

const std::string kLabel993 = "probe@example.test@imap.example.test:993/INBOX";

TEST_F(MailboxRegistryTest, TargetsOfOneMailboxShareATrackerAndItsPlainLabel) {
    const auto first = attach(mailbox(993), "b");
    const auto second = attach(mailbox(993), "a");
    registry_.commit();
    EXPECT_EQ(first, second);
    EXPECT_EQ(first->settings().label, kLabel993);
}

TEST_F(MailboxRegistryTest, MailboxesOnOtherPortsAreToldApartByThePortAlone) {
    const auto implicit = attach(mailbox(993), "imaps");
    const auto starttls = attach(mailbox(143), "starttls");
    registry_.commit();
    EXPECT_NE(implicit, starttls);
    EXPECT_EQ(implicit->settings().label, kLabel993);
    EXPECT_EQ(starttls->settings().label, "probe@example.test@imap.example.test:143/INBOX");
}

// A reload with other [agent] dns_servers gives the mailbox a session resolved by them; the same
// servers (a reload that changed something else) keep the session.
TEST_F(MailboxRegistryTest, OtherDnsServersMakeAnotherTracker) {
    const auto with_servers = [this](uint16_t dns_port) {
        DnsResolver::Options options;
        options.servers = {{boost::asio::ip::make_address("127.0.0.1"), dns_port}};
        std::string problem;
        auto settings = mailbox(993);
        settings.endpoint.resolver = DnsResolver::create(io_.get_executor(), options, problem);
        EXPECT_TRUE(settings.endpoint.resolver) << problem;
        return settings;
    };
    const auto first = attach(with_servers(5353), "rt");
    registry_.commit();
    EXPECT_EQ(attach(with_servers(5353), "rt"), first);
    registry_.commit();
    EXPECT_NE(attach(with_servers(5354), "rt"), first);
    registry_.commit();
}

TEST_F(MailboxRegistryTest, TrackersThatWouldShareALabelEachNameTheirFirstTarget) {
    // The same user, host, port and mailbox, logging in with another secret: two trackers.
    const auto old_secret = attach(mailbox(993, "/run/old-token"), "rt-old");
    const auto shared = attach(mailbox(993), "rt-z");
    attach(mailbox(993), "rt-b");
    const auto cleanup_differs = [] {
        auto settings = mailbox(993);
        settings.cleanup = CleanupMode::trash;
        return settings;
    }();
    const auto trash = attach(cleanup_differs, "rt-trash");
    registry_.commit();
    EXPECT_EQ(old_secret->settings().label, kLabel993 + " (target rt-old)");
    EXPECT_EQ(shared->settings().label, kLabel993 + " (target rt-b)");
    EXPECT_EQ(trash->settings().label, kLabel993 + " (target rt-trash)");
}

TEST_F(MailboxRegistryTest, AReloadRelabelsTheTrackersItKeeps) {
    const auto kept = attach(mailbox(993), "rt");
    attach(mailbox(993, "/run/other-token"), "rt-other");
    registry_.commit();
    ASSERT_EQ(kept->settings().label, kLabel993 + " (target rt)");

    // The other login is gone: the kept tracker is alone with its label again.
    EXPECT_EQ(attach(mailbox(993), "rt"), kept);
    registry_.commit();
    EXPECT_EQ(kept->settings().label, kLabel993);
}

}  // namespace
}  // namespace mailcanary
