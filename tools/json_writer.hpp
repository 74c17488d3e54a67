// A minimal JSON writer for `pidlock status --json`.
//
// No JSON library is a dependency of pidlock, and one object of flat
// members does not justify one.
#ifndef PIDLOCK_TOOLS_JSON_WRITER_HPP
#define PIDLOCK_TOOLS_JSON_WRITER_HPP

#include <cstdint>
#include <string>
#include <string_view>

namespace pidlock::cli {

// `bytes` as a quoted JSON string. Quotes, backslashes and control
// characters are escaped; valid UTF-8 is kept as is; every byte that is not
// part of valid UTF-8 (a Latin-1 path, say) becomes U+FFFD, so that the
// output is always valid JSON and valid UTF-8.
std::string json_quote(std::string_view bytes);

// Builds one JSON object, member by member, in the order added.
class JsonObject {
 public:
  JsonObject& add_string(std::string_view key, std::string_view value);
  JsonObject& add_integer(std::string_view key, std::int64_t value);
  JsonObject& add_bool(std::string_view key, bool value);
  JsonObject& add_null(std::string_view key);
  // `json` must already be valid JSON (a nested object, say).
  JsonObject& add_raw(std::string_view key, std::string_view json);

  // The object's text, e.g. {"state":"held","pid":42}.
  std::string str() const { return text_ + "}"; }

 private:
  void key(std::string_view key);
  std::string text_ = "{";
};

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_JSON_WRITER_HPP
