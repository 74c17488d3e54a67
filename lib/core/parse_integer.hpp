// Decimal integers read from text that must be all number: a record's
// fields, /proc's.
#ifndef PIDLOCK_PARSE_INTEGER_HPP
#define PIDLOCK_PARSE_INTEGER_HPP

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace pidlock::detail {

// Parses the whole of `text` as a decimal integer of type T: no spaces, no
// leading '+', no sign unless `allow_negative`; nullopt for anything else,
// including a value that does not fit in T.
template <typename T>
std::optional<T> parse_integer(std::string_view text, bool allow_negative = false) {
  if (text.empty()) return std::nullopt;
  if (text.front() == '-' && !allow_negative) return std::nullopt;
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace pidlock::detail

#endif  // PIDLOCK_PARSE_INTEGER_HPP
