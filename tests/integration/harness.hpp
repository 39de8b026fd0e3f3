// What the integration tests share: the agent binary run as a user runs it, the real stack's
// settings (written by tests/stack/mailstack.sh), and HTTP to the agent's endpoints.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "protocols/credentials.hpp"
#include "protocols/token.hpp"
#include "support/exposition.hpp"
#include "support/files.hpp"

extern char** environ;

namespace mailcanary::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// KEY=VALUE lines that a script of tests/stack wrote into the stack's directory: stack.env
// (mailstack.sh), mtas.env (mtas.sh), cyrus.env (cyrus.sh).
inline std::map<std::string, std::string> stack_env(const std::string& file = "stack.env") {
    const char* dir = std::getenv("MAILCANARY_STACK_DIR");
    if (dir == nullptr) throw std::runtime_error("MAILCANARY_STACK_DIR is not set");
    std::map<std::string, std::string> env;
    env["MAILCANARY_STACK_DIR_PATH"] = dir;
    std::ifstream in(fs::path(dir) / file);
    if (!in) throw std::runtime_error("no " + file + " in " + dir + ": is the stack started?");
    for (std::string line; std::getline(in, line);) {
        const auto equals = line.find('=');
        if (equals != std::string::npos && line[0] != '#')
            env[line.substr(0, equals)] = line.substr(equals + 1);
    }
    return env;
}

// libcurl's write callback: appends what arrives to the std::string given as its data.
inline size_t append_to_string(char* data, size_t size, size_t count, void* out) {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
}

struct HttpReply {
    long status = 0;
    std::string body;
    std::string content_type;
};

// `headers`: "Name: value" lines sent besides curl's own.
inline HttpReply http(const std::string& method, const std::string& url,
                      const std::vector<std::string>& headers = {}) {
    HttpReply reply;
    CURL* curl = curl_easy_init();
    curl_slist* header_list = nullptr;
    for (const std::string& header : headers)
        header_list = curl_slist_append(header_list, header.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_to_string);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
        char* type = nullptr;
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
        if (type != nullptr) reply.content_type = type;
    }
    curl_easy_cleanup(curl);
    curl_slist_free_all(header_list);
    return reply;
}

struct Run {
    int exit_code = -1;
    std::string output;
};

// Runs the agent to completion (for --config.check and --probe), capturing stdout and stderr.
inline Run run_binary(std::vector<std::string> args, const fs::path& output_file) {
    std::vector<char*> argv{const_cast<char*>(MAILCANARY_BINARY)};
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    Run run;
    if (posix_spawn(&pid, MAILCANARY_BINARY, &actions, nullptr, argv.data(), environ) == 0) {
        int status = 0;
        waitpid(pid, &status, 0);
        run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    run.output = read_file(output_file);
    return run;
}

// The agent as a long-running process with its own config file and log. `launcher`: a command
// (absolute path first) that runs the agent, e.g. prlimit with the limits to run it under;
// `flags`: more of the agent's own flags.
class AgentProcess {
  public:
    AgentProcess(const fs::path& dir, const std::string& config,
                 std::vector<std::string> launcher = {}, std::vector<std::string> flags = {})
        : dir_(dir) {
        fs::create_directories(dir_);
        write_config(config);
        const fs::path log = dir_ / "agent.log";
        std::vector<std::string> args = std::move(launcher);
        for (std::string arg :
             {std::string(MAILCANARY_BINARY), "--config.file=" + (dir_ / "agent.toml").string(),
              std::string("--web.listen-address=127.0.0.1:0"), std::string("--log.level=debug")}) {
            args.push_back(std::move(arg));
        }
        for (std::string& flag : flags) args.push_back(std::move(flag));
        std::vector<char*> argv;
        argv.reserve(args.size() + 1);
        for (auto& arg : args) argv.push_back(arg.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0644);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        // The log says where it listens (port 0 picked a free one).
        const auto deadline = Clock::now() + 10s;
        while (port_.empty() && Clock::now() < deadline && pid_ > 0) {
            const std::string text = read_file(log);
            const auto at = text.find("address=127.0.0.1:");
            if (at != std::string::npos) {
                const auto start = at + std::string("address=127.0.0.1:").size();
                port_ = text.substr(start, text.find_first_not_of("0123456789", start) - start);
            } else {
                std::this_thread::sleep_for(20ms);
            }
        }
    }

    ~AgentProcess() {
        if (pid_ > 0 && !exited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

    bool started() const { return !port_.empty(); }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + port_ + path; }
    std::string metrics() const { return http("GET", url("/metrics")).body; }
    std::string log() const { return read_file(dir_ / "agent.log"); }
    void write_config(const std::string& config) const {
        std::ofstream(dir_ / "agent.toml") << config;
    }

    // Polls /metrics until `condition` holds or `limit` passes; returns the last exposition.
    std::string wait_for(const std::function<bool(const std::string&)>& condition,
                         std::chrono::milliseconds limit = 10s) const {
        const auto deadline = Clock::now() + limit;
        std::string text = metrics();
        while (!condition(text) && Clock::now() < deadline) {
            std::this_thread::sleep_for(50ms);
            text = metrics();
        }
        return text;
    }

    // Polls the agent's log until it has `needle` or `limit` passes; whether it has.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds limit = 10s) const {
        const auto deadline = Clock::now() + limit;
        while (log().find(needle) == std::string::npos) {
            if (Clock::now() >= deadline) return false;
            std::this_thread::sleep_for(50ms);
        }
        return true;
    }

    // Sends the signal and returns the exit code, or -1 if the agent did not exit within `limit`.
    int stop(int signal_number, std::chrono::milliseconds limit) {
        kill(pid_, signal_number);
        const auto deadline = Clock::now() + limit;
        int status = 0;
        while (Clock::now() < deadline) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

    pid_t pid() const { return pid_; }

  private:
    fs::path dir_;
    pid_t pid_ = -1;
    bool exited_ = false;
    std::string port_;
};

class AgentIntegration : public testing::Test {
  protected:
    AgentIntegration() : env_(stack_env()) {
        const auto* info = testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("mailcanary-it-" + std::to_string(getpid())) /
               info->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }

    fs::path probe_maildir() const {
        return fs::path(env_.at("MAILSTACK_MAIL_DIR")) / env_.at("MAILSTACK_DOMAIN") / "probe" /
               "Maildir";
    }

    // Stores `message` in the probe user's INBOX the Maildir way (tmp/, then new/), owned by the
    // user Dovecot stores mail as, the file's time (the message's INTERNALDATE) `age` ago. `name`
    // is its unique file name.
    void store_in_probe_inbox(const std::string& name, const std::string& message,
                              std::chrono::seconds age) const {
        // Dovecot creates the Maildir when the mailbox is first opened: on a fresh stack, now.
        if (!fs::exists(probe_maildir() / "new")) {
            const std::string open_inbox = "doveadm -c " + env_.at("MAILSTACK_DOVECOT_CONFIG") +
                                           " mailbox status -u " + env_.at("MAILSTACK_USER") +
                                           " messages INBOX >/dev/null";
            ASSERT_EQ(std::system(open_inbox.c_str()), 0) << open_inbox;
        }
        const fs::path staged = probe_maildir() / "tmp" / name;
        std::ofstream(staged) << message;
        const passwd* mail_user = getpwnam("mail");
        ASSERT_NE(mail_user, nullptr);
        ASSERT_EQ(chown(staged.c_str(), mail_user->pw_uid, mail_user->pw_gid), 0)
            << staged << ": " << std::strerror(errno);
        fs::last_write_time(staged, fs::last_write_time(staged) - age);
        fs::rename(staged, probe_maildir() / "new" / name);
    }

    std::string host() const { return env_.at("MAILSTACK_HOST"); }
    std::string port(const char* key) const { return env_.at(key); }
    std::string ca() const { return env_.at("MAILSTACK_CA_FILE"); }

    // A target table in TOML; `extra` goes inside the target.
    std::string target(const std::string& name, const std::string& port_value,
                       const std::string& tls, const std::string& extra = "") const {
        return "[[targets]]\nname = \"" + name + "\"\nhost = \"" + host() +
               "\"\nport = " + port_value + "\ntls = \"" + tls + "\"\n" + extra + "\n";
    }
    std::string tls_options(const std::string& more = "") const {
        return "[targets.tls_options]\nca_file = \"" + ca() + "\"\n" + more;
    }
    static std::string header() {
        return "[defaults]\ninterval = \"1s\"\ntimeout = \"800ms\"\nhelo = "
               "\"probe.mailcanary.test\"\n\n";
    }
    // [targets.message] and [targets.roundtrip]: a message to the stack's user, then awaited in
    // their mailbox over IMAP. `message_extra` goes into [targets.message], `roundtrip_extra` into
    // [targets.roundtrip].
    std::string roundtrip_tables(const std::string& imap_host, const std::string& imap_port,
                                 const std::string& imap_tls,
                                 const std::string& roundtrip_extra = "",
                                 const std::string& message_extra = "") const {
        return "[targets.message]\nfrom = \"canary@mailcanary.test\"\nto = [\"" +
               env_.at("MAILSTACK_USER") + "\"]\n" + message_extra +
               "[targets.roundtrip]\nimap_host = \"" + imap_host + "\"\nimap_port = " + imap_port +
               "\nimap_tls = \"" + imap_tls + "\"\nusername = \"" + env_.at("MAILSTACK_USER") +
               "\"\npassword_file = \"" + env_.at("MAILSTACK_PASSWORD_FILE") + "\"\n" +
               roundtrip_extra + "[targets.roundtrip.tls_options]\nca_file = \"" + ca() + "\"\n";
    }

    std::map<std::string, std::string> env_;
    fs::path dir_;
};

inline std::string success_series(const std::string& target, const std::string& probe = "connect") {
    return R"(mailcanary_probe_success{probe=")" + probe + R"(",target=")" + target + "\"}";
}

// A wait_for condition: every named target has a result for the probe.
inline std::function<bool(const std::string&)> each_reported(std::vector<std::string> targets,
                                                             std::string probe = "connect") {
    return [targets = std::move(targets), probe = std::move(probe)](const std::string& text) {
        return std::all_of(targets.begin(), targets.end(), [&](const std::string& target) {
            return value_of(text, success_series(target, probe)) >= 0;
        });
    };
}
inline std::string failure_series(const std::string& target, const std::string& reason) {
    return R"(mailcanary_probe_failures_total{probe="connect",reason=")" + reason +
           R"(",target=")" + target + "\"}";
}

// Tells the messages of the agent run in `dir` by their token: signed with the secret it keeps
// beside its config. Without that secret (the agent never started) nothing is the agent's.
class OwnTokens {
  public:
    explicit OwnTokens(const fs::path& dir) {
        std::string problem;
        secret_ = read_secret_file(dir / "mailcanary.secret", problem);
    }
    bool known() const { return secret_.has_value(); }
    // Whether `message` (or just its header) carries a token of this agent's.
    bool in(const std::string& message) const {
        static const std::regex token_header(R"(X-Mailcanary-Token: (mc[12]\.[0-9a-f.]+))");
        std::smatch match;
        return secret_ && std::regex_search(message, match, token_header) &&
               verify_token(match[1].str(), *secret_);
    }

  private:
    std::optional<std::string> secret_;
};

// `count()` (of the agent's messages left in a mailbox) taken while none of the roundtrip runs
// of `targets` has a message in flight: pending 0 before and after, and no run ended meanwhile.
// What a run in flight sent is not the agent's to have cleaned yet. -1 when no such moment came.
inline int count_between_runs(const AgentProcess& agent, const std::vector<std::string>& targets,
                              const std::function<int()>& count) {
    const auto quiet = [&](const std::string& text) {
        return std::all_of(targets.begin(), targets.end(), [&](const std::string& target) {
            return value_of(text, "mailcanary_roundtrip_pending{target=\"" + target + "\"}") == 0;
        });
    };
    const auto runs = [&](const std::string& text) {
        double total = 0;
        for (const auto& target : targets) {
            total += value_of(
                text, R"(mailcanary_probe_runs_total{probe="roundtrip",target=")" + target + "\"}");
        }
        return total;
    };
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
        const std::string before = agent.metrics();
        if (quiet(before)) {
            const int found = count();
            const std::string after = agent.metrics();
            if (quiet(after) && runs(after) == runs(before)) return found;
        }
        std::this_thread::sleep_for(10ms);
    }
    return -1;
}

// Files in a Maildir's new/ and cur/ that contain `needle`.
inline int messages_containing(const fs::path& maildir, const std::string& needle) {
    int found = 0;
    for (const char* sub : {"new", "cur"}) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(maildir / sub, ec)) {
            if (read_file(entry.path()).find(needle) != std::string::npos) ++found;
        }
    }
    return found;
}

}  // namespace mailcanary::test
