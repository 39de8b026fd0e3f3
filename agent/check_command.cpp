#include "agent/check_command.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <vector>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "agent/probe_once.hpp"
#include "agent/waterfall_render.hpp"
#include "common/blocking_work.hpp"
#include "probes/imap_probe.hpp"
#include "probes/validators.hpp"

namespace mailcanary {
namespace {

constexpr std::array<std::string_view, 4> kCheckProbes{"connect", "auth", "accept", "imap"};

// A flag's problem, ending the parse.
struct UsageError {
    std::string message;
};

// "host", "host:port", "[v6]", "[v6]:port"; an IPv6 address without brackets is a host alone.
struct HostPort {
    std::string host;
    std::optional<uint16_t> port;
};

HostPort split_host_port(std::string_view text) {
    std::string_view host = text;
    std::optional<std::string_view> port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == text.npos) throw UsageError{"\"" + std::string(text) + "\": no closing ]"};
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (!rest.starts_with(':'))
                throw UsageError{"\"" + std::string(text) + "\": expected :PORT after ]"};
            port = rest.substr(1);
        }
    } else if (const auto colon = text.find(':');
               colon != text.npos && text.find(':', colon + 1) == text.npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    HostPort parsed{std::string(host), std::nullopt};
    if (const auto problem = check_host(parsed.host))
        throw UsageError{"host \"" + parsed.host + "\": " + *problem};
    if (port) {
        if (const auto problem = check_port_text(*port))
            throw UsageError{"port \"" + std::string(*port) + "\": " + *problem};
        parsed.port = static_cast<uint16_t>(std::stoul(std::string(*port)));
    }
    return parsed;
}

TlsMode parse_tls(const std::string& text) {
    if (text == "none") return TlsMode::none;
    if (text == "starttls") return TlsMode::starttls;
    if (text == "implicit") return TlsMode::implicit;
    throw UsageError{"--tls: \"" + text + "\" is not one of none, starttls, implicit"};
}

std::vector<std::string> parse_probes(const std::string& text) {
    std::vector<std::string> probes;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = std::min(text.find(',', start), text.size());
        const std::string name = text.substr(start, comma - start);
        if (std::find(kCheckProbes.begin(), kCheckProbes.end(), name) == kCheckProbes.end())
            throw UsageError{"--probes: \"" + name +
                             "\" is not one of connect, auth, accept, imap"};
        if (std::find(probes.begin(), probes.end(), name) != probes.end())
            throw UsageError{"--probes: \"" + name + "\" is listed twice"};
        probes.push_back(name);
        start = comma + 1;
    }
    return probes;
}

// Files are named in the configuration by absolute path; on the command line, relative to here.
std::string absolute(const std::string& path) { return std::filesystem::absolute(path).string(); }

void require_ok(const std::optional<std::string>& problem, std::string_view flag) {
    if (problem) throw UsageError{std::string(flag) + ": " + *problem};
}

// The flags as given, before they become a target.
struct Flags {
    std::optional<HostPort> server;
    std::optional<TlsMode> tls;
    std::vector<std::string> probes{"connect"};
    AuthConfig auth;
    std::string from;
    std::vector<std::string> to;
    std::string helo;
    TlsOptions tls_options;
    Duration timeout = kDefaultTimeout;
    IpFamily family = IpFamily::any;
    bool verbose = false;
    CheckOutput output = CheckOutput::text;
    bool show_help = false;

    bool lists(std::string_view probe) const {
        return std::find(probes.begin(), probes.end(), probe) != probes.end();
    }
};

Flags read_flags(std::span<const char* const> args) {
    Flags flags;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        std::string_view name = arg;
        std::optional<std::string> value;
        if (const auto equals = arg.find('='); arg.starts_with("--") && equals != arg.npos) {
            name = arg.substr(0, equals);
            value = std::string(arg.substr(equals + 1));
        }
        const std::string flag(name);
        const auto take = [&]() -> std::string {
            if (!value) {
                if (i + 1 >= args.size()) throw UsageError{"flag " + flag + " needs a value"};
                value = args[++i];
            }
            if (value->empty()) throw UsageError{"flag " + flag + " needs a value"};
            return *value;
        };
        const auto no_value = [&] {
            if (value) throw UsageError{"flag " + flag + " takes no value"};
        };
        const auto one_secret = [&](std::string& slot) {
            if (!flags.auth.password_env.empty() || !flags.auth.password_file.empty() ||
                !flags.auth.token_file.empty()) {
                throw UsageError{"give one of --password-env, --password-file, --token-file"};
            }
            slot = take();
        };

        if (name == "--password" || name == "--token" || name == "-p") {
            throw UsageError{
                flag +
                " is refused: a secret on the command line is visible to every user of this "
                "machine (ps, /proc) and stays in the shell's history. Use --password-env=VAR, "
                "--password-file=FILE or --token-file=FILE"};
        } else if (name == "--tls") {
            flags.tls = parse_tls(take());
        } else if (name == "--probes") {
            flags.probes = parse_probes(take());
        } else if (name == "--username") {
            flags.auth.username = take();
            require_ok(check_no_control(flags.auth.username), "--username");
        } else if (name == "--password-env") {
            one_secret(flags.auth.password_env);
            require_ok(check_password_env(flags.auth.password_env), "--password-env");
        } else if (name == "--password-file") {
            one_secret(flags.auth.password_file);
            flags.auth.password_file = absolute(flags.auth.password_file);
            require_ok(check_secret_holding_file(flags.auth.password_file, "password file"),
                       "--password-file");
        } else if (name == "--token-file") {
            one_secret(flags.auth.token_file);
            flags.auth.token_file = absolute(flags.auth.token_file);
            require_ok(check_secret_holding_file(flags.auth.token_file, "token file"),
                       "--token-file");
        } else if (name == "--from") {
            flags.from = take();
            require_ok(check_address(flags.from), "--from");
        } else if (name == "--to") {
            flags.to.push_back(take());
            require_ok(check_address(flags.to.back()), "--to");
        } else if (name == "--helo") {
            flags.helo = take();
            require_ok(check_helo(flags.helo), "--helo");
        } else if (name == "--ca-file") {
            flags.tls_options.ca_file = absolute(take());
            require_ok(check_readable_file(flags.tls_options.ca_file, "CA file"), "--ca-file");
        } else if (name == "--server-name") {
            flags.tls_options.server_name = take();
            require_ok(check_tls_name(flags.tls_options.server_name), "--server-name");
        } else if (name == "--insecure-skip-verify") {
            no_value();
            flags.tls_options.insecure_skip_verify = true;
        } else if (name == "--timeout") {
            const std::string text = take();
            const auto timeout = parse_duration(text);
            if (!timeout || *timeout <= Duration::zero())
                throw UsageError{"--timeout: \"" + text +
                                 "\" is not a duration such as 10s or 1m30s"};
            flags.timeout = *timeout;
        } else if (name == "-4" || name == "-6") {
            flags.family = name == "-4" ? IpFamily::v4 : IpFamily::v6;
        } else if (name == "-v" || name == "--verbose") {
            no_value();
            flags.verbose = true;
        } else if (name == "--output") {
            const std::string text = take();
            if (text != "text" && text != "json")
                throw UsageError{"--output: \"" + text + "\" is not one of text, json"};
            flags.output = text == "json" ? CheckOutput::json : CheckOutput::text;
        } else if (name == "-h" || name == "--help") {
            flags.show_help = true;
        } else if (!arg.starts_with('-') && !flags.server) {
            flags.server = split_host_port(arg);
        } else if (!arg.starts_with('-')) {
            throw UsageError{"one server at a time: \"" + std::string(arg) + "\" is one too many"};
        } else {
            throw UsageError{"unknown flag \"" + std::string(arg) +
                             "\" (see mailcanary check --help)"};
        }
    }
    return flags;
}

// What the probes listed need and what was given only for probes not listed.
void check_combination(const Flags& flags) {
    if (!flags.server) throw UsageError{"which server? mailcanary check HOST[:PORT]"};
    const bool logs_in = flags.lists("auth") || flags.lists("imap");
    const bool has_secret = !flags.auth.password_env.empty() || !flags.auth.password_file.empty() ||
                            !flags.auth.token_file.empty();
    if (logs_in && flags.auth.username.empty())
        throw UsageError{"the auth and imap probes log in: give --username"};
    if (!flags.auth.username.empty() && !has_secret) {
        throw UsageError{
            "--username needs its secret: --password-env=VAR, --password-file=FILE or "
            "--token-file=FILE"};
    }
    if (has_secret && flags.auth.username.empty())
        throw UsageError{"a password or token needs --username"};
    if (flags.lists("accept") && (flags.from.empty() || flags.to.empty()))
        throw UsageError{"the accept probe sends a message: give --from and --to"};
    if (!flags.lists("accept") && (!flags.from.empty() || !flags.to.empty()))
        throw UsageError{"--from and --to are for the accept probe: add it to --probes"};
}

// Without --tls, the port says: 465 and 993 are implicit TLS, every other port STARTTLS. Without
// a port, the TLS mode says: 465 (993 for IMAP) for implicit TLS, else 25 (143). With neither,
// SMTP is 25 with STARTTLS and IMAP 993.
std::pair<uint16_t, TlsMode> port_and_tls(const Flags& flags, bool imap) {
    const auto default_port = imap ? default_imap_port : default_smtp_port;
    const std::optional<uint16_t> port = flags.server->port;
    const uint16_t port_or_usual = port.value_or(imap ? default_imap_port(TlsMode::implicit)
                                                      : default_smtp_port(TlsMode::starttls));
    const TlsMode tls = flags.tls.value_or(
        port_or_usual == default_port(TlsMode::implicit) ? TlsMode::implicit : TlsMode::starttls);
    return {port.value_or(default_port(tls)), tls};
}

// The target the loader would build from the same settings in a [[targets]] table.
TargetConfig make_target(const Flags& flags) {
    TargetConfig target;
    target.host = flags.server->host;
    const bool imap_only = flags.probes == std::vector<std::string>{"imap"};
    std::tie(target.port, target.tls) = port_and_tls(flags, imap_only);
    target.name =
        (target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host) + ":" +
        std::to_string(target.port);
    target.ip_family = flags.family;
    target.helo = flags.helo.empty() ? machine_host_name() : flags.helo;
    target.timeout = flags.timeout;
    target.interval = flags.timeout;
    target.probes = flags.probes;
    target.tls_options = flags.tls_options;
    if (!flags.auth.username.empty()) target.auth = flags.auth;
    if (flags.lists("accept")) {
        MessageConfig message;
        message.from = flags.from;
        message.to = flags.to;
        target.message = std::move(message);
    }
    if (flags.lists("imap")) {
        // IMAP alone: the server named is the IMAP server. Beside SMTP probes: the same host's
        // IMAP port, 993 with implicit TLS.
        ImapOptions imap;
        imap.host = target.host;
        imap.port = imap_only ? target.port : default_imap_port(TlsMode::implicit);
        imap.tls = imap_only ? target.tls : TlsMode::implicit;
        imap.tls_options = flags.tls_options;
        imap.auth = flags.auth;
        target.probe_options.set("imap", std::make_shared<TypedOptions<ImapOptions>>(imap));
    }
    return target;
}

// Signs the accept probe's token: nothing waits for this one message, so a key of its own.
std::string one_time_secret() {
    std::array<unsigned char, 32> bytes{};
    RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
    std::string hex;
    for (const unsigned char byte : bytes) {
        constexpr std::string_view kHex = "0123456789abcdef";
        hex += kHex[byte >> 4];
        hex += kHex[byte & 0xf];
    }
    return hex;
}

}  // namespace

CheckParse parse_check_args(std::span<const char* const> args) {
    try {
        const Flags flags = read_flags(args);
        if (flags.show_help) return {{}, {}, true};
        check_combination(flags);
        return {CheckRequest{make_target(flags), flags.verbose, flags.output}, {}, false};
    } catch (const UsageError& usage_error) {
        return {{}, usage_error.message, false};
    }
}

std::string check_usage() {
    return R"(Usage: mailcanary check HOST[:PORT] [flags]

Tries a mail server once with the agent's own probes and prints each phase as a waterfall,
the certificate, and the outcome with its reason. No configuration file is read.

Flags:
  --tls=MODE                 none, starttls or implicit; default from the port: 465 (993 for
                             IMAP) implicit TLS, any other port STARTTLS
  --probes=LIST              connect, auth, accept, imap, comma-separated (default: connect).
                             With imap alone, HOST:PORT is the IMAP server (default port 993);
                             beside SMTP probes, imap goes to HOST's port 993, implicit TLS
  --username=USER            the login for auth, imap, and accept (authenticated submission)
  --password-env=VAR         the password, from this environment variable
  --password-file=FILE       the password, from this file
  --token-file=FILE          an OAuth2 access token, from this file (XOAUTH2/OAUTHBEARER)
  --from=ADDRESS             accept: the envelope sender and From
  --to=ADDRESS               accept: a recipient; repeat for several
  --helo=NAME                the EHLO name (default: this machine's host name)
  --ca-file=FILE             trust these CAs instead of the system's
  --server-name=NAME         the name to send (SNI) and verify instead of HOST
  --insecure-skip-verify     do not fail for the certificate (it is still shown)
  --timeout=DURATION         for each probe's run (default: 10s)
  -4, -6                     connect over IPv4 only, or IPv6 only
  -v, --verbose              print each probe's transcript too (secrets redacted)
  --output=FORMAT            text or json (one JSON document; default: text)
  -h, --help                 print this help and exit
  --password, --token, -p    refused: a secret on the command line is readable by every user
                             of the machine (ps, /proc) and kept in the shell's history
Exit status: 0 when every probe succeeded, 1 when one failed, 2 for a usage error.
)";
}

int check_command(std::span<const char* const> args) {
    const CheckParse parsed = parse_check_args(args);
    if (parsed.show_help) {
        std::fputs(check_usage().c_str(), stdout);
        return 0;
    }
    if (!parsed.request) {
        std::fprintf(stderr, "mailcanary check: %s\n", parsed.error.c_str());
        return 2;
    }
    const CheckRequest& request = *parsed.request;
    Config config;
    config.source_path = "mailcanary check";
    config.targets.push_back(request.target);
    std::vector<ConfigError> errors;
    boost::asio::io_context io;
    // Without a configuration file: the system's DNS servers.
    auto resolver = make_resolver(io.get_executor(), config, errors);
    // The secret file is never read nor made: the one message sent gets a key of its own.
    auto compiled = compile_targets(config, errors, SecretPolicy::load_if_present, resolver);
    resolver.reset();  // the target's endpoints hold it: run_probes_once takes the only ones
    if (!errors.empty() || compiled.empty()) {
        for (const auto& error : errors)
            std::fprintf(stderr, "mailcanary check: %s\n", error.message.c_str());
        return 2;
    }
    if (request.target.message) compiled.front()->token_secret = one_time_secret();

    const std::vector<OneRun> runs = run_probes_once(io, std::move(compiled.front()));
    stop_blocking_work();  // before `io` goes: a worker may still post to it
    const std::string rendered = request.output == CheckOutput::json
                                     ? render_check_json(request.target, runs, request.verbose)
                                     : render_check_text(request.target, runs, request.verbose);
    std::fputs(rendered.c_str(), stdout);
    const bool all_succeeded = std::all_of(runs.begin(), runs.end(),
                                           [](const OneRun& run) { return run.outcome.success(); });
    return all_succeeded ? 0 : 1;
}

}  // namespace mailcanary
