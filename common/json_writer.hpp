// JSON text written as it is built, for the status API and JSON log lines: no document tree,
// commas placed by the writer. Strings must be UTF-8 (what the agent shows of a server's words
// is made printable ASCII before it gets here).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailcanary {

// `value` with JSON's escapes ('"', '\\', control characters), without the quotes.
void append_json_escaped(std::string& out, std::string_view value);

class JsonWriter {
  public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view name);  // inside an object, before each value

    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    JsonWriter& value(bool flag);
    JsonWriter& value(std::int64_t number);
    JsonWriter& value(double number);  // six significant digits at least; NaN and inf as null
    JsonWriter& null();

    const std::string& text() const { return out_; }

  private:
    void before_value();

    std::string out_;
    std::vector<bool> has_member_;  // per open container: whether it has one already
    bool after_key_ = false;
};

}  // namespace mailcanary
