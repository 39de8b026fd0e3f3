#include "agent/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

namespace mailcanary {
namespace {

std::optional<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream file(path);
    if (!file) {
        return std::nullopt;
    }
    std::ostringstream content;
    content << file.rdbuf();
    if (file.bad()) {
        return std::nullopt;
    }
    return content.str();
}

std::optional<long long> parse_integer(std::string_view text) {
    long long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// The fields of /proc/<pid>/stat this collector uses, as documented in proc(5).
struct ProcessStat {
    long long user_ticks = 0;
    long long system_ticks = 0;
    long long start_ticks = 0;  // after boot
    long long virtual_bytes = 0;
    long long resident_pages = 0;
};

std::optional<ProcessStat> parse_process_stat(std::string_view content) {
    // Field 2, the command name in parentheses, may itself contain spaces and parentheses.
    const auto name_end = content.rfind(')');
    if (name_end == std::string_view::npos) {
        return std::nullopt;
    }
    std::istringstream rest{std::string(content.substr(name_end + 1))};
    std::vector<std::string> fields{"pid", "comm"};  // so that fields[n - 1] is field n
    for (std::string field; rest >> field;) {
        fields.push_back(field);
    }
    if (fields.size() < 24) {
        return std::nullopt;
    }
    const auto user = parse_integer(fields[13]);
    const auto system = parse_integer(fields[14]);
    const auto start = parse_integer(fields[21]);
    const auto virtual_size = parse_integer(fields[22]);
    const auto resident = parse_integer(fields[23]);
    if (!user || !system || !start || !virtual_size || !resident) {
        return std::nullopt;
    }
    return ProcessStat{*user, *system, *start, *virtual_size, *resident};
}

// The boot time in seconds since the epoch: the "btime" line of /proc/stat.
std::optional<long long> parse_boot_time(std::string_view content) {
    std::istringstream lines{std::string(content)};
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("btime ")) {
            return parse_integer(std::string_view(line).substr(6));
        }
    }
    return std::nullopt;
}

std::optional<long long> count_directory_entries(const std::filesystem::path& directory) {
    std::error_code ec;
    std::filesystem::directory_iterator entry(directory, ec);
    long long count = 0;
    for (; !ec && entry != std::filesystem::directory_iterator(); entry.increment(ec)) {
        ++count;
    }
    if (ec) {
        return std::nullopt;
    }
    return count;
}

prometheus::MetricFamily single_value_family(std::string name, std::string help,
                                             prometheus::MetricType type, double value) {
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    return prometheus::MetricFamily{std::move(name), std::move(help), type, {metric}};
}

prometheus::MetricFamily gauge(std::string name, std::string help, double value) {
    return single_value_family(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                               value);
}

}  // namespace

ProcessCollector::ProcessCollector(std::filesystem::path proc_root)
    : proc_root_(std::move(proc_root)),
      clock_ticks_per_second_(sysconf(_SC_CLK_TCK)),
      page_size_bytes_(sysconf(_SC_PAGESIZE)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
    std::vector<prometheus::MetricFamily> families;
    try {
        const auto stat_content = read_file(proc_root_ / "self" / "stat");
        const auto stat = stat_content ? parse_process_stat(*stat_content) : std::nullopt;
        const auto ticks = static_cast<double>(clock_ticks_per_second_);

        if (stat && clock_ticks_per_second_ > 0) {
            families.push_back(single_value_family(
                "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                prometheus::MetricType::Counter,
                static_cast<double>(stat->user_ticks + stat->system_ticks) / ticks));
        }
        if (const auto open_fds = count_directory_entries(proc_root_ / "self" / "fd")) {
            families.push_back(gauge("process_open_fds", "Number of open file descriptors.",
                                     static_cast<double>(*open_fds)));
        }
        if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0) {
            families.push_back(gauge("process_max_fds", "Maximum number of open file descriptors.",
                                     static_cast<double>(limit.rlim_cur)));
        }
        if (stat) {
            families.push_back(gauge("process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.",
                                     static_cast<double>(stat->virtual_bytes)));
        }
        if (stat && page_size_bytes_ > 0) {
            families.push_back(gauge(
                "process_resident_memory_bytes", "Resident memory size in bytes.",
                static_cast<double>(stat->resident_pages) * static_cast<double>(page_size_bytes_)));
        }
        const auto boot_content = read_file(proc_root_ / "stat");
        const auto boot_time = boot_content ? parse_boot_time(*boot_content) : std::nullopt;
        if (stat && boot_time && clock_ticks_per_second_ > 0) {
            families.push_back(gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                static_cast<double>(*boot_time) + static_cast<double>(stat->start_ticks) / ticks));
        }
    } catch (...) {  // only allocation can fail; a scrape must not take the agent down
    }
    return families;
}

}  // namespace mailcanary
