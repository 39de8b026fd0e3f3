#include "protocols/failure_reason.hpp"
#include "protocols/phase.hpp"

namespace mailcanary {

std::string_view to_string(FailureReason reason) {
    switch (reason) {
        case FailureReason::dns:
            return "dns";
        case FailureReason::connect_refused:
            return "connect_refused";
        case FailureReason::connect_timeout:
            return "connect_timeout";
        case FailureReason::network:
            return "network";
        case FailureReason::banner_timeout:
            return "banner_timeout";
        case FailureReason::banner_rejected:
            return "banner_rejected";
        case FailureReason::ehlo_rejected:
            return "ehlo_rejected";
        case FailureReason::starttls_unavailable:
            return "starttls_unavailable";
        case FailureReason::starttls_rejected:
            return "starttls_rejected";
        case FailureReason::tls_handshake:
            return "tls_handshake";
        case FailureReason::tls_cert_untrusted:
            return "tls_cert_untrusted";
        case FailureReason::tls_cert_expired:
            return "tls_cert_expired";
        case FailureReason::tls_cert_hostname:
            return "tls_cert_hostname";
        case FailureReason::timeout:
            return "timeout";
        case FailureReason::protocol:
            return "protocol";
        case FailureReason::closed:
            return "closed";
        case FailureReason::auth_unavailable:
            return "auth_unavailable";
        case FailureReason::auth_rejected:
            return "auth_rejected";
        case FailureReason::auth_tempfail:
            return "auth_tempfail";
        case FailureReason::auth_insecure:
            return "auth_insecure";
        case FailureReason::oauth_token:
            return "oauth_token";
        case FailureReason::auth_accepted:
            return "auth_accepted";
        case FailureReason::mail_rejected:
            return "mail_rejected";
        case FailureReason::mail_tempfail:
            return "mail_tempfail";
        case FailureReason::rcpt_rejected:
            return "rcpt_rejected";
        case FailureReason::rcpt_tempfail:
            return "rcpt_tempfail";
        case FailureReason::data_rejected:
            return "data_rejected";
        case FailureReason::data_tempfail:
            return "data_tempfail";
        case FailureReason::message_rejected:
            return "message_rejected";
        case FailureReason::message_tempfail:
            return "message_tempfail";
        case FailureReason::size_exceeded:
            return "size_exceeded";
        case FailureReason::junk:
            return "junk";
        case FailureReason::lost:
            return "lost";
        case FailureReason::imap_connect:
            return "imap_connect";
        case FailureReason::imap_tls:
            return "imap_tls";
        case FailureReason::imap_auth:
            return "imap_auth";
        case FailureReason::imap_protocol:
            return "imap_protocol";
        case FailureReason::greeting_rejected:
            return "greeting_rejected";
        case FailureReason::select_rejected:
            return "select_rejected";
    }
    return "unknown";
}

std::string_view to_string(Phase phase) {
    switch (phase) {
        case Phase::resolve:
            return "resolve";
        case Phase::connect:
            return "connect";
        case Phase::banner:
            return "banner";
        case Phase::ehlo:
            return "ehlo";
        case Phase::starttls:
            return "starttls";
        case Phase::tls_handshake:
            return "tls_handshake";
        case Phase::auth:
            return "auth";
        case Phase::mail:
            return "mail";
        case Phase::rcpt:
            return "rcpt";
        case Phase::data:
            return "data";
        case Phase::data_end:
            return "data_end";
        case Phase::quit:
            return "quit";
        case Phase::greeting:
            return "greeting";
        case Phase::capability:
            return "capability";
        case Phase::select:
            return "select";
        case Phase::logout:
            return "logout";
    }
    return "unknown";
}

}  // namespace mailcanary
