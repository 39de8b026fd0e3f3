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

// One item of a sequence-set, "5" or "3:7" (either order), as its ascending range.
struct UidRange {
    std::uint32_t low = 0;
    std::uint32_t high = 0;
    std::uint64_t size() const { return std::uint64_t{high} - low + 1; }
};

std::optional<UidRange> parse_range(std::string_view item) {
    const auto colon = item.find(':');
    const auto first = parse_uid(item.substr(0, colon));
    const auto second = colon == std::string_view::npos ? first : parse_uid(item.substr(colon + 1));
    if (!first || !second) return std::nullopt;
    return UidRange{std::min(*first, *second), std::max(*first, *second)};
}

// The items of a sequence-set in the order listed; an item that is not a UID or a range of
// UIDs is nullopt.
std::vector<std::optional<UidRange>> ranges(std::string_view set) {
    std::vector<std::optional<UidRange>> out;
    while (!set.empty()) {
        const auto comma = set.find(',');
        out.push_back(parse_range(set.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
    }
    return out;
}

// COPYUID's arguments: "<uidvalidity> <source set> <destination set>".
struct Copyuid {
    std::uint32_t uid_validity = 0;
    std::string_view source;
    std::string_view destination;
};

std::optional<Copyuid> parse_copyuid(std::string_view code) {
    const auto arguments = code_argument(code, "COPYUID");
    if (!arguments) return std::nullopt;
    const auto first_space = arguments->find(' ');
    const auto second_space = arguments->find(' ', first_space + 1);
    if (first_space == std::string_view::npos || second_space == std::string_view::npos) {
        return std::nullopt;
    }
    const auto validity = parse_uid(arguments->substr(0, first_space));
    if (!validity) return std::nullopt;
    return Copyuid{*validity, arguments->substr(first_space + 1, second_space - first_space - 1),
                   arguments->substr(second_space + 1)};
}

// The COPYUID codes of a COPY's or MOVE's reply: in its completion, or (MOVE, RFC 6851 4.3) in
// an untagged OK before its EXPUNGEs.
std::vector<Copyuid> copyuids(const Completion& completion) {
    std::vector<Copyuid> found;
    if (!completion.ok()) return found;
    if (auto copyuid = parse_copyuid(completion.code)) found.push_back(*copyuid);
    for (const Response& response : completion.untagged) {
        if (!response.is_status()) continue;
        if (auto copyuid = parse_copyuid(response.code)) found.push_back(*copyuid);
    }
    return found;
}

std::optional<std::uint32_t> paired_uid(const Copyuid& copyuid, std::uint32_t uid) {
    std::uint64_t index = 0;
    bool found = false;
    for (const auto& range : ranges(copyuid.source)) {
        if (!range) return std::nullopt;
        if (range->low <= uid && uid <= range->high) {
            index += uid - range->low;
            found = true;
            break;
        }
        index += range->size();
    }
    if (!found) return std::nullopt;
    for (const auto& range : ranges(copyuid.destination)) {
        if (!range) return std::nullopt;
        if (index < range->size()) return static_cast<std::uint32_t>(range->low + index);
        index -= range->size();
    }
    return std::nullopt;
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
    const auto items = ranges(set);
    return std::any_of(items.begin(), items.end(), [uid](const std::optional<UidRange>& range) {
        return range && range->low <= uid && uid <= range->high;
    });
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
    const auto found = copyuids(completion);
    return std::any_of(found.begin(), found.end(), [uid](const Copyuid& copyuid) {
        return uid_set_contains(copyuid.source, uid);
    });
}

std::optional<Copy> copied_to(const Completion& completion, std::uint32_t uid) {
    for (const Copyuid& copyuid : copyuids(completion)) {
        if (const auto destination = paired_uid(copyuid, uid)) {
            return Copy{copyuid.uid_validity, *destination};
        }
    }
    return std::nullopt;
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
