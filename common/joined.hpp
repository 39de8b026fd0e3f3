// Two arrays as one, at compile time: lists that extend others (a probe kind's phases, a table's
// keys) are written as what they add.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

namespace mailcanary {

template <typename T, std::size_t A, std::size_t B>
constexpr std::array<T, A + B> joined(const std::array<T, A>& first,
                                      const std::array<T, B>& second) {
    std::array<T, A + B> all{};
    std::copy(first.begin(), first.end(), all.begin());
    std::copy(second.begin(), second.end(), all.begin() + A);
    return all;
}

}  // namespace mailcanary
