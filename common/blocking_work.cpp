#include "common/blocking_work.hpp"

#include <boost/asio/thread_pool.hpp>
#include <mutex>

namespace mailcanary {
namespace {

// A few threads: name lookups for many targets must not queue behind one slow lookup.
constexpr std::size_t kWorkers = 4;

std::mutex g_mutex;
bool g_stopping = false;  // guarded by g_mutex

boost::asio::thread_pool& workers() {
    // Never destroyed: a worker stuck in a blocking call must not hold up the process's exit.
    static auto* pool = new boost::asio::thread_pool(kWorkers);
    return *pool;
}

}  // namespace

namespace blocking_work_detail {

void submit(std::function<void()> work) { boost::asio::post(workers(), std::move(work)); }

bool deliver_on(const boost::asio::any_io_executor& executor, std::function<void()> delivery) {
    // Under the lock, so that once stop_blocking_work() returns nothing reaches the executor.
    std::lock_guard lock(g_mutex);
    if (g_stopping) return false;
    boost::asio::post(executor, std::move(delivery));
    return true;
}

}  // namespace blocking_work_detail

void stop_blocking_work() {
    std::lock_guard lock(g_mutex);
    g_stopping = true;
}

bool blocking_work_stopping() {
    std::lock_guard lock(g_mutex);
    return g_stopping;
}

}  // namespace mailcanary
