// What was said during one probe run, with times, for the status page and the one-shot probe.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary {

// Server bytes made safe to show anywhere (status page, logs, JSON): control characters and
// bytes outside ASCII are written as \xNN.
std::string printable(std::string_view text);

class Transcript {
  public:
    using Clock = std::chrono::steady_clock;

    enum class Direction { client, server, note };

    struct Entry {
        Clock::duration at;  // since the run started
        Direction direction;
        std::string text;
    };

    // Bounds keep a chatty or hostile server from growing the kept transcripts without limit.
    static constexpr std::size_t kMaxEntries = 200;
    static constexpr std::size_t kMaxTextBytes = std::size_t{32} * 1024;

    explicit Transcript(
        Clock::time_point started = Clock::now(),
        std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now())
        : started_(started), started_wall_(started_wall) {}

    void client(std::string_view text) { add(Direction::client, text); }
    void server(std::string_view text) { add(Direction::server, text); }
    void note(std::string_view text) { add(Direction::note, text); }
    void add(Direction direction, std::string_view text, Clock::time_point at = Clock::now());

    const std::vector<Entry>& entries() const { return entries_; }
    bool truncated() const { return truncated_; }
    std::chrono::system_clock::time_point started_wall() const { return started_wall_; }

    // One line per entry: "+  12.345ms S: 250-PIPELINING".
    std::string to_text() const;

  private:
    Clock::time_point started_;
    std::chrono::system_clock::time_point started_wall_;
    std::vector<Entry> entries_;
    std::size_t text_bytes_ = 0;
    bool truncated_ = false;
};

}  // namespace mailcanary
