// Reading files in tests.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace mailcanary::test {

// The whole file, or "" when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// A fresh directory under the system temp directory, removed with its contents afterwards.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Writes `contents` to path()/relative, making its folders; returns the file's path.
    std::filesystem::path write(const std::filesystem::path& relative,
                                std::string_view contents) const;

  private:
    std::filesystem::path path_;
};

}  // namespace mailcanary::test
