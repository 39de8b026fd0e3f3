// Lets a test see "permission denied" even when the tests run as root (CI does).
#pragma once

#include <cstdint>

namespace mailcanary::test {

// While alive, file permissions bind the calling thread as they would bind any other user:
// root's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH leave its effective set. Capabilities belong
// to a thread, so no other thread is affected; they stay permitted and come back at the end.
// A thread without them (not root) is unchanged.
class FilePermissionsEnforced {
  public:
    FilePermissionsEnforced();
    ~FilePermissionsEnforced();
    FilePermissionsEnforced(const FilePermissionsEnforced&) = delete;
    FilePermissionsEnforced& operator=(const FilePermissionsEnforced&) = delete;

  private:
    std::uint32_t saved_effective_ = 0;  // the first 32 capabilities, where both live
};

}  // namespace mailcanary::test
