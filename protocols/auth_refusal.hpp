// Why a server refused a login. A refusal by policy (SMTP AUTH or basic authentication turned
// off for the tenant, an app password or a web login required) is said whatever the credentials
// are, so it proves nothing about them: it is auth_disabled, never auth_rejected, and a negative
// test (expect = "reject") cannot pass on it. The codes and texts are the providers' own; the
// sources are cited in tests/unit/auth_refusal_test.cpp. What is not recognised stays
// auth_rejected, as before.
#pragma once

#include <string_view>

#include "protocols/failure_reason.hpp"
#include "protocols/smtp_reply.hpp"

namespace mailcanary {

// A 5xx reply to AUTH: auth_disabled or auth_rejected.
FailureReason smtp_auth_refusal(const smtp::Reply& reply);

// The NO (or BAD) that ended an IMAP LOGIN or AUTHENTICATE, by its response code ("ALERT",
// "WEBALERT https://...", "UNAVAILABLE") and text: auth_disabled, auth_tempfail or auth_rejected.
FailureReason imap_login_refusal(std::string_view code, std::string_view text);

}  // namespace mailcanary
