// The standard process_* metrics (CPU time, memory, file descriptors, start time) of the
// Prometheus client libraries, read from /proc at each scrape.
#pragma once

#include <filesystem>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace mailcanary {

class ProcessCollector : public prometheus::Collectable {
  public:
    // `proc_root` is where procfs is mounted; tests point it at a fake one.
    explicit ProcessCollector(std::filesystem::path proc_root = "/proc");

    // Never throws; a metric whose source cannot be read is left out.
    std::vector<prometheus::MetricFamily> Collect() const override;

  private:
    std::filesystem::path proc_root_;
    long clock_ticks_per_second_;
    long page_size_bytes_;
};

}  // namespace mailcanary
