// Checks of single setting values shared by the schema and the probe kinds' own tables: host
// names, addresses, header text, files that hold secrets. Each returns the problem, worded for
// a configuration error, or nothing.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/toml_reader.hpp"

namespace mailcanary {

// Headers the probe message always has; [targets.message.headers] may not set them again.
inline constexpr std::array<std::string_view, 10> kAgentHeaders{
    "Date",           "Message-ID",        "From",         "To",
    "Subject",        "MIME-Version",      "Content-Type", "Content-Transfer-Encoding",
    "Auto-Submitted", "X-Mailcanary-Token"};

bool has_space_or_control(std::string_view text);

std::optional<std::string> check_no_control(const std::string& text);

std::optional<std::string> check_port_text(std::string_view port);

std::optional<std::string> check_host(const std::string& host);

// An IMAP mailbox name goes into the dialog as a quoted string or a literal: anything but a line
// break or a NUL can be sent.
std::optional<std::string> check_mailbox_name(const std::string& name);

// RFC 8601 2.5: in practice the receiving server's host name; it is compared, never sent. A
// leading "*." makes it a suffix ("*.mail.yahoo.com").
std::optional<std::string> check_authserv_id(const std::string& id);

// The EHLO argument goes into the SMTP dialog verbatim: no room for spaces or line breaks.
std::optional<std::string> check_helo(const std::string& helo);

// The name a certificate is checked against (and sent as SNI): a NUL or a scope id would make
// OpenSSL check a different name, or none.
std::optional<std::string> check_tls_name(const std::string& name);

// Names the variable in every message, never its value.
std::optional<std::string> check_password_env(const std::string& name);

// A path that may be absent, but if something is there, it is a regular file (or a link to one).
std::optional<std::string> check_regular_if_exists(const std::string& file, std::string_view what);

// What keeps a file from being read at load: absent, not a regular file, no permission.
std::optional<std::string> check_readable_file(const std::string& file, std::string_view what);

// A readable file with a secret in it (a password, a refresh token, a client secret): something
// besides the CR/LF trimmed from its end. Says what is wrong with the file, never what is in it.
std::optional<std::string> check_secret_holding_file(const std::string& file,
                                                     std::string_view what);

// check_readable_file and check_secret_holding_file as checks for ConfigReader::checked, naming
// the file `what` in their messages.
ElementCheck readable_file(std::string_view what);

ElementCheck secret_holding_file(std::string_view what);

// A secret in a file that every user can read: a warning. Its group may read it: that is how a
// Kubernetes Secret reaches a pod's non-root user (defaultMode 0440 with an fsGroup). None when
// the file is not there.
std::optional<std::string> check_not_world_readable(const std::string& file, std::string_view what);

// An address as the accept probe writes it, in MAIL FROM:<...>, RCPT TO:<...> and the From and
// To headers: a deliberately plain "local@domain", nothing that needs quoting or could end the
// angle brackets or split the address list.
std::optional<std::string> check_address(const std::string& address);

// Header text goes into the message verbatim, one line each: no line breaks, a bounded length.
std::optional<std::string> check_header_text(std::string_view text, std::size_t max_length);

std::optional<std::string> check_subject(const std::string& subject);

// RFC 5322 2.2: a field name is printable ASCII without ':'; the agent's own are refused.
std::optional<std::string> check_header_name(std::string_view name);

// "https://host[:port][/path]" with a host. The value is never quoted back: user information in
// it would be a secret, so that is refused as well (the client secret has its own file).
std::optional<std::string> check_token_url(const std::string& url);

}  // namespace mailcanary
