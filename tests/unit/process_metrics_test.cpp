#include "agent/process_metrics.hpp"

#include <unistd.h>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace mailcanary {
namespace {

std::map<std::string, prometheus::MetricFamily> by_name(
    const std::vector<prometheus::MetricFamily>& families) {
    std::map<std::string, prometheus::MetricFamily> result;
    for (const auto& family : families) {
        result.emplace(family.name, family);
    }
    return result;
}

double value_of(const prometheus::MetricFamily& family) {
    EXPECT_EQ(family.metric.size(), 1u) << family.name;
    const auto& metric = family.metric.at(0);
    return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                          : metric.gauge.value;
}

double seconds_since_epoch() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST(ProcessCollectorTest, ReportsTheSixStandardProcessMetrics) {
    volatile double sink = 0;  // burn some CPU so that the CPU time is above zero
    for (const auto start = std::chrono::steady_clock::now();
         std::chrono::steady_clock::now() - start < std::chrono::milliseconds(50);) {
        sink = sink + std::sqrt(static_cast<double>(sink) + 2.0);
    }

    const auto families = by_name(ProcessCollector().Collect());
    ASSERT_EQ(families.size(), 6u);

    const auto& cpu = families.at("process_cpu_seconds_total");
    EXPECT_EQ(cpu.type, prometheus::MetricType::Counter);
    EXPECT_EQ(cpu.help, "Total user and system CPU time spent in seconds.");
    EXPECT_GT(value_of(cpu), 0.0);

    EXPECT_GT(value_of(families.at("process_resident_memory_bytes")), 1024.0 * 1024.0);
    EXPECT_GT(value_of(families.at("process_virtual_memory_bytes")),
              value_of(families.at("process_resident_memory_bytes")));
    EXPECT_GE(value_of(families.at("process_open_fds")), 3.0);
    EXPECT_GE(value_of(families.at("process_max_fds")), value_of(families.at("process_open_fds")));

    const double start_time = value_of(families.at("process_start_time_seconds"));
    EXPECT_LE(start_time, seconds_since_epoch() + 1.0);
    EXPECT_GT(start_time, seconds_since_epoch() - 6 * 3600.0);

    for (const auto& [name, family] : families) {
        if (name != "process_cpu_seconds_total") {
            EXPECT_EQ(family.type, prometheus::MetricType::Gauge) << name;
        }
        EXPECT_FALSE(family.help.empty()) << name;
    }
}

TEST(ProcessCollectorTest, SerializesTheCounterUnderItsFullName) {
    const std::string text = prometheus::TextSerializer().Serialize(ProcessCollector().Collect());
    EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("process_cpu_seconds_total_total"), std::string::npos) << text;
    EXPECT_NE(text.find("\nprocess_resident_memory_bytes "), std::string::npos) << text;
}

class FakeProcTest : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = std::filesystem::temp_directory_path() /
                ("fake_proc_" + std::to_string(getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(root_ / "self" / "fd");
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    void write(const std::filesystem::path& relative, const std::string& content) {
        std::ofstream(root_ / relative) << content;
    }

    std::filesystem::path root_;
};

TEST_F(FakeProcTest, ParsesStatWithAWeirdCommandName) {
    // Fields 14/15 (utime/stime), 22 (starttime), 23 (vsize) and 24 (rss) are the ones used.
    write("self/stat",
          "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 1 0 500 "
          "123456789 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
    write("stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 5\n");
    for (const char* fd : {"0", "1", "2"}) {
        write(std::filesystem::path("self/fd") / fd, "");
    }

    const auto families = by_name(ProcessCollector(root_).Collect());
    ASSERT_EQ(families.size(), 6u);
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    EXPECT_DOUBLE_EQ(value_of(families.at("process_cpu_seconds_total")), 400.0 / ticks);
    EXPECT_DOUBLE_EQ(value_of(families.at("process_virtual_memory_bytes")), 123456789.0);
    EXPECT_DOUBLE_EQ(value_of(families.at("process_resident_memory_bytes")), 100.0 * page);
    EXPECT_DOUBLE_EQ(value_of(families.at("process_open_fds")), 3.0);
    EXPECT_DOUBLE_EQ(value_of(families.at("process_start_time_seconds")),
                     1700000000.0 + 500.0 / ticks);
}

TEST_F(FakeProcTest, LeavesOutWhatCannotBeRead) {
    write("self/stat", "42 (truncated) S 1 2 3\n");
    std::filesystem::remove(root_ / "self" / "fd");

    const auto families = by_name(ProcessCollector(root_).Collect());
    EXPECT_EQ(families.size(), 1u);
    EXPECT_TRUE(families.contains("process_max_fds"));  // from getrlimit, not /proc
}

}  // namespace
}  // namespace mailcanary
