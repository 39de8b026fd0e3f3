// One-shot mode (--probe=TARGET): runs each probe of one target once and prints what happened.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "probes/probe.hpp"

namespace mailcanary {

// Exit code: 0 when every probe succeeded, 1 when one failed, 2 when there is no such target.
int probe_once(const Config& config, std::vector<std::shared_ptr<CompiledTarget>> targets,
               const std::string& target_name);

}  // namespace mailcanary
