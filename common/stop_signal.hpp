// Asks work in flight to stop (shutdown, a target removed). Single-threaded like the agent.
#pragma once

#include <functional>
#include <utility>

namespace mailcanary {

class StopSignal {
  public:
    void request() {
        requested_ = true;
        if (auto handler = std::exchange(handler_, nullptr)) handler();
    }
    bool requested() const { return requested_; }
    // The run's current I/O registers how to interrupt it.
    void on_request(std::function<void()> handler) { handler_ = std::move(handler); }
    void clear() { handler_ = nullptr; }

  private:
    bool requested_ = false;
    std::function<void()> handler_;
};

}  // namespace mailcanary
