// Whether an SMTP reply says the server throttles this client: too many connections, messages
// or logins from it for now. That is no outage: the server works and would let the client in
// later. The codes and texts are the RFCs' and the providers' own; the sources are cited in
// tests/unit/smtp_throttling_test.cpp.
#pragma once

#include "protocols/smtp_reply.hpp"

namespace mailcanary::smtp {

// A transient (4xx) reply that means rate limiting: an enhanced status only rate limiting uses
// (4.7.28, Microsoft's 4.7.500 to 4.7.699), a rate named in the text (which decides over the
// code: Postfix says 450 4.7.1 "too much mail"), or a 421 that closes the channel with "try
// again later" and no other cause. Never greylisting (451 4.7.1), never a 421 that names another
// cause (4.3.2 shutting down, 4.4.2 timeout) and no rate: those are the server's trouble.
bool throttles(const Reply& reply);

}  // namespace mailcanary::smtp
