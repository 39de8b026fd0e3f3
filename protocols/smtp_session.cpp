#include "protocols/smtp_session.hpp"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <memory>

#include "protocols/connection.hpp"

namespace mailcanary::smtp {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kGoodbyeGrace = std::chrono::milliseconds(300);
// The run's result is known once QUIT is sent: a server slow to answer it gets this long, not
// the rest of the run's timeout.
constexpr auto kQuitGrace = std::chrono::seconds(1);

// On shutdown, a session that is in step says goodbye before it is cut.
asio::awaitable<void> say_goodbye(std::shared_ptr<Connection> connection, Transcript& transcript) {
    connection->set_deadline(Clock::now() + kGoodbyeGrace);
    transcript.client("QUIT");
    transcript.note("run cancelled: the agent is stopping or the target was removed");
    error_code ignored;
    co_await connection->write("QUIT\r\n", ignored);
}

}  // namespace

asio::awaitable<Outcome> run_dialog(const Endpoint& endpoint, SessionRun run, Dialog& dialog) {
    const auto connection =
        Connection::create(co_await asio::this_coro::executor, run.transcript, &run.metrics);
    connection->set_deadline(run.deadline);
    const InterruptOnStop interrupt_on_stop(run.stop, connection);
    const auto cancelled = [&] { return run.stop.requested(); };
    const auto started = Clock::now();

    error_code ec;
    co_await connection->connect(endpoint, ec);
    if (cancelled()) co_return Outcome::stopped();
    if (ec) {
        const Failure failure = connection->failure(ec);
        connection->enter(std::nullopt);
        co_return Outcome::failed(failure.reason, failure.detail);
    }

    Outcome outcome;
    Action action = dialog.start();
    bool quit_sent = false;
    while (action.kind != Action::Kind::done) {
        connection->enter(action.phase);
        if (action.phase == Phase::quit && !quit_sent) {
            quit_sent = true;
            connection->set_deadline(std::min(run.deadline, Clock::now() + kQuitGrace));
        }
        switch (action.kind) {
            case Action::Kind::write:
                co_await connection->write(action.bytes, ec);
                if (!ec) action = dialog.on_written();
                break;
            case Action::Kind::read:
            case Action::Kind::buffered: {
                // A buffered reply came with the last read: it is taken in a step of its own, in
                // the phase the dialog moved to, without reading.
                std::string_view received;
                if (action.kind == Action::Kind::read) received = co_await connection->read(ec);
                if (!ec) {
                    action = dialog.on_bytes(received);
                    if (dialog.message_accepted() && !run.metrics.message_accepted_at) {
                        // The round trip is timed from here.
                        run.metrics.message_accepted_at =
                            std::max(connection->last_arrival(), started);
                        run.metrics.submission = *run.metrics.message_accepted_at - started;
                    }
                } else if (ec == asio::error::eof && !connection->timed_out()) {
                    ec.clear();
                    action = dialog.on_closed();
                }
                break;
            }
            case Action::Kind::start_tls:
                co_await connection->start_tls(endpoint, ec);
                if (!ec) action = dialog.on_tls_established();
                break;
            case Action::Kind::done:
                break;
        }
        const bool interrupted = connection->timed_out() || cancelled();
        if (!ec && interrupted && action.kind != Action::Kind::done) {
            ec = asio::error::operation_aborted;
        }
        if (!ec) continue;

        if (cancelled()) {
            if (dialog.can_quit() && !connection->timed_out()) {
                co_await say_goodbye(connection, run.transcript);
            }
            co_return Outcome::stopped();
        }
        // A failure found by the dialog stands; I/O errors during its polite QUIT don't matter.
        if (dialog.failure()) break;
        // Everything that mattered was answered: a slow or rude goodbye is noted, not a failure.
        if (quit_sent) {
            run.transcript.note("no clean answer to QUIT (" +
                                std::string(connection->timed_out() ? "timed out" : ec.message()) +
                                "); the run's result stands");
            break;
        }
        const Failure failure = connection->failure(ec);
        outcome = Outcome::failed(failure.reason, failure.detail);
        run.transcript.note("failed: " + std::string(to_string(failure.reason)) + ": " +
                            outcome.detail);
        break;
    }
    connection->enter(std::nullopt);

    for (const auto& record : dialog.replies()) {
        run.metrics.replies.emplace_back(record.command, record.code);
    }
    if (dialog.failure()) outcome = Outcome::failed(*dialog.failure(), dialog.failure_detail());
    co_return outcome;
}

}  // namespace mailcanary::smtp
