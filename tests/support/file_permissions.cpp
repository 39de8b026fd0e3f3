#include "support/file_permissions.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mailcanary::test {
namespace {

struct Capabilities {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
};

// glibc has no wrapper for these; the raw calls act on the calling thread only.
Capabilities read_capabilities() {
    Capabilities caps;
    if (syscall(SYS_capget, &caps.header, caps.data) != 0) {
        throw std::runtime_error(std::string("capget: ") + std::strerror(errno));
    }
    return caps;
}

bool write_effective(std::uint32_t effective) {
    Capabilities caps = read_capabilities();
    caps.data[0].effective = effective;
    return syscall(SYS_capset, &caps.header, caps.data) == 0;
}

constexpr std::uint32_t bit(int capability) { return std::uint32_t{1} << capability; }
constexpr std::uint32_t kFileOverrides = bit(CAP_DAC_OVERRIDE) | bit(CAP_DAC_READ_SEARCH);

}  // namespace

FilePermissionsEnforced::FilePermissionsEnforced()
    : saved_effective_(read_capabilities().data[0].effective) {
    if ((saved_effective_ & kFileOverrides) != 0 &&
        !write_effective(saved_effective_ & ~kFileOverrides)) {
        throw std::runtime_error(std::string("capset: ") + std::strerror(errno));
    }
}

FilePermissionsEnforced::~FilePermissionsEnforced() {
    // Every later test on this thread would run without root's overrides: stop instead.
    if ((saved_effective_ & kFileOverrides) != 0 && !write_effective(saved_effective_)) {
        std::abort();
    }
}

}  // namespace mailcanary::test
