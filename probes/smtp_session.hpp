// Runs an SMTP dialog over a real connection: resolve, connect, then the dialog's actions, every
// operation bounded by the run's deadline; I/O failures are classified into reasons.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <vector>

#include "probes/probe.hpp"
#include "probes/smtp_dialog.hpp"

namespace mailcanary::smtp {

boost::asio::awaitable<Outcome> run_dialog(ProbeRun run, Dialog& dialog);

// Connects to the first endpoint that accepts, trying them in order as an MTA does; an
// interruption (operation_aborted: the deadline or a stop) or the deadline ends the tries. When
// none accepts, `ec` holds the last error.
boost::asio::awaitable<void> connect_in_order(boost::asio::ip::tcp::socket& socket,
                                              std::vector<boost::asio::ip::tcp::endpoint> endpoints,
                                              Transcript& transcript,
                                              std::chrono::steady_clock::time_point deadline,
                                              boost::system::error_code& ec);

}  // namespace mailcanary::smtp
