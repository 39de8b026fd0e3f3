// Runs an SMTP dialog over a real connection (protocols/connection: resolve, connect, TLS), then
// the dialog's actions, every operation bounded by the run's deadline; I/O failures become reasons.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <vector>

#include "protocols/endpoint.hpp"
#include "protocols/outcome.hpp"
#include "protocols/smtp_dialog.hpp"

namespace mailcanary::smtp {

boost::asio::awaitable<Outcome> run_dialog(const Endpoint& endpoint, SessionRun run,
                                           Dialog& dialog);

}  // namespace mailcanary::smtp
