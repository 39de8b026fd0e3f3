#include "protocols/imap_removal.hpp"

#include <algorithm>
#include <charconv>

#include "common/text.hpp"

namespace mailcanary::imap {
namespace {

std::optional<std::uint32_t> parse_uid(std::string_view text) {
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

// The UID a FETCH response names, if any (unsolicited flag updates may name none).
std::optional<std::uint32_t> fetched_uid(const Response& response) {
    if (response.name != "FETCH" || response.data.empty() ||
        response.data[0].kind != Value::Kind::list) {
        return std::nullopt;
    }
    const auto& items = response.data[0].items;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        if (items[i].is_atom("UID")) return items[i + 1].number();
    }
    return std::nullopt;
}

// COPYUID's arguments: "<uidvalidity> <source set> <destination set>".
bool copyuid_names(std::string_view code, std::uint32_t uid) {
    auto arguments = code_argument(code, "COPYUID");
    if (!arguments) return false;
    const auto first_space = arguments->find(' ');
    if (first_space == std::string_view::npos) return false;
    const auto rest = arguments->substr(first_space + 1);
    return uid_set_contains(rest.substr(0, rest.find(' ')), uid);
}

}  // namespace

std::optional<std::string_view> code_argument(std::string_view code, std::string_view name) {
    if (code.size() <= name.size() + 1 || !iequals(code.substr(0, name.size()), name) ||
        code[name.size()] != ' ') {
        return std::nullopt;
    }
    return code.substr(name.size() + 1);
}

bool uid_set_contains(std::string_view set, std::uint32_t uid) {
    while (!set.empty()) {
        const auto comma = set.find(',');
        const auto item = set.substr(0, comma);
        const auto colon = item.find(':');
        const auto low = parse_uid(item.substr(0, colon));
        const auto high = colon == std::string_view::npos ? low : parse_uid(item.substr(colon + 1));
        if (low && high && std::min(*low, *high) <= uid && uid <= std::max(*low, *high)) {
            return true;
        }
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
    }
    return false;
}

bool store_updated(const Completion& completion, std::uint32_t uid) {
    if (!completion.ok()) return false;
    if (const auto modified = code_argument(completion.code, "MODIFIED");
        modified && uid_set_contains(*modified, uid)) {
        return false;
    }
    for (const Response& response : completion.untagged) {
        if (fetched_uid(response) == uid) return true;
    }
    return false;
}

bool move_moved(const Completion& completion, std::uint32_t uid) {
    if (!completion.ok()) return false;
    if (copyuid_names(completion.code, uid)) return true;
    for (const Response& response : completion.untagged) {
        if (response.is_status() && copyuid_names(response.code, uid)) return true;
    }
    return false;
}

void MessagePosition::follow(const std::vector<Response>& responses) {
    for (const Response& response : responses) {
        if (expunged_) return;
        if (response.kind != Response::Kind::untagged || !response.number) continue;
        if (response.name == "FETCH" && fetched_uid(response) == uid_) {
            sequence_ = response.number;
        } else if (response.name == "EXPUNGE" && sequence_) {
            if (*response.number == *sequence_) expunged_ = true;
            if (*response.number < *sequence_) --*sequence_;
        }
    }
}

}  // namespace mailcanary::imap
