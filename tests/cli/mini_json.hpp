// A small, strict JSON parser, to check `pidlock status --json` as a
// consumer would: the output must parse as a whole, with nothing after it.
#ifndef PIDLOCK_TESTS_CLI_MINI_JSON_HPP
#define PIDLOCK_TESTS_CLI_MINI_JSON_HPP

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cli_test {

struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // strings, UTF-8
  std::vector<Json> items;
  std::map<std::string, Json> members;

  bool is_null() const { return type == Type::kNull; }
  // The member `key`; a null Json if absent. has() tells them apart.
  const Json& operator[](const std::string& key) const;
  bool has(const std::string& key) const { return members.count(key) != 0; }
};

// Parses `text` (surrounding whitespace allowed); throws std::runtime_error
// with the offset on any error.
Json parse_json(const std::string& text);

}  // namespace cli_test

#endif  // PIDLOCK_TESTS_CLI_MINI_JSON_HPP
