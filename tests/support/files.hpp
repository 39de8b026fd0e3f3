// Reading files in tests.
#pragma once

#include <filesystem>
#include <string>

namespace mailcanary::test {

// The whole file, or "" when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace mailcanary::test
