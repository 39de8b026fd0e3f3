// Blocking calls (libcurl's token requests) run on worker threads, never on the agent's event
// loop; the caller awaits the result no later than its deadline.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace mailcanary {

namespace blocking_work_detail {
// Hands `work` to a worker; `deliver` is called on the caller's executor with the result, unless
// the agent is stopping by then.
void submit(std::function<void()> work);
bool deliver_on(const boost::asio::any_io_executor& executor, std::function<void()> delivery);
}  // namespace blocking_work_detail

// No result is delivered after this, and libcurl transfers abort: call before the io_context
// that awaits results is destroyed. Workers still inside a blocking call are left to finish on
// their own; nothing waits for them.
void stop_blocking_work();
bool blocking_work_stopping();

// Runs `work` on a worker thread; an empty optional when `deadline` comes first (the late
// result is dropped).
template <typename Result>
boost::asio::awaitable<std::optional<Result>> run_blocking(
    std::function<Result()> work, std::chrono::steady_clock::time_point deadline) {
    // Shared with the worker, which may drop its reference on its own thread, after the event
    // loop is gone: so no Asio object lives here, only the result and a pointer to the caller's
    // timer, touched on the event loop only.
    struct Exchange {
        std::optional<Result> result;
        boost::asio::steady_timer* waiting = nullptr;  // null once the caller stopped waiting
    };
    const auto executor = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer done(executor, deadline);
    auto exchange = std::make_shared<Exchange>();
    exchange->waiting = &done;
    blocking_work_detail::submit([exchange, executor, work = std::move(work)]() mutable {
        auto result = work();
        blocking_work_detail::deliver_on(executor,
                                         [exchange, result = std::move(result)]() mutable {
                                             exchange->result = std::move(result);
                                             if (exchange->waiting != nullptr)
                                                 exchange->waiting->cancel();
                                         });
    });
    boost::system::error_code ignored;
    co_await done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    exchange->waiting = nullptr;
    co_return std::move(exchange->result);
}

}  // namespace mailcanary
