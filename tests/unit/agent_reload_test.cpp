// The agent renders /metrics on its render thread while its loop reloads the configuration:
// targets (and their series) come and go under a scrape in progress. Run under ThreadSanitizer
// (the tsan preset), this is the race between the two.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "agent/agent.hpp"

namespace mailcanary {
namespace {

namespace fs = std::filesystem;

// Connect probes only: compiling them creates no secret and connects to nothing.
std::string config_with_targets(int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
        text += "[[targets]]\nname = \"mx-" + std::to_string(i) +
                "\"\nhost = \"127.0.0.1\"\nport = 9\nprobes = [\"connect\"]\n";
    }
    return text;
}

void write_file(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AgentReload, ReloadsWhileMetricsAreRenderedOffTheLoop) {
    const fs::path file =
        fs::temp_directory_path() / ("mailcanary-reload-" + std::to_string(::getpid()) + ".toml");
    write_file(file, config_with_targets(3));
    auto loaded = load_config_file(file.string());
    ASSERT_TRUE(loaded.config) << loaded.errors.front().to_string();
    auto targets = compile_targets(*loaded.config, loaded.errors);
    ASSERT_TRUE(loaded.errors.empty());

    boost::asio::io_context io;
    CliOptions options;
    options.config_file = file.string();
    Agent agent(io, options, std::move(*loaded.config),
                CompiledLoad{std::move(targets), {}, nullptr});

    // What the HTTP server would run on its render executor for each scrape.
    http::Request scrape;
    scrape.method = "GET";
    scrape.path = "/metrics";
    auto render = agent.handle(scrape).render_body;
    ASSERT_TRUE(render);

    std::atomic<bool> done{false};
    std::atomic<int> scrapes{0};
    std::thread scraper([&] {
        while (!done) {
            EXPECT_NE(render().find("mailcanary_config_last_reload_successful"), std::string::npos);
            ++scrapes;
        }
    });
    int reloads = 0;
    for (; reloads < 40 || scrapes < 10; ++reloads) {
        write_file(file, config_with_targets(reloads % 4));
        std::string report;
        EXPECT_TRUE(agent.reload(report)) << report;
    }
    done = true;
    scraper.join();
    fs::remove(file);

    // The last reload's targets are the ones exposed.
    const std::string text = render();
    const int last = (reloads - 1) % 4;
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(text.find("target=\"mx-" + std::to_string(i) + "\"") != std::string::npos,
                  i < last)
            << i;
    }
}

}  // namespace
}  // namespace mailcanary
