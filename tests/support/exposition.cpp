#include "support/exposition.hpp"

namespace mailcanary::test {

double value_of(const std::string& exposition, const std::string& series) {
    const std::string line_start = series + " ";
    std::size_t at = 0;
    if (!exposition.starts_with(line_start)) {
        at = exposition.find("\n" + line_start);
        if (at == std::string::npos) return -1;
        ++at;
    }
    return std::stod(exposition.substr(at + line_start.size()));
}

}  // namespace mailcanary::test
