#include "arguments.hpp"

#include "cli.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace pidlock::cli {

namespace {

// Longest accepted wait: about 31 years, far beyond any real timeout but
// small enough that the milliseconds fit every clock's representation.
constexpr double kMaxSeconds = 1e9;

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

ArgumentReader::ArgumentReader(std::string command, int argc, char** argv)
    : command_(std::move(command)), argc_(argc), argv_(argv) {}

bool ArgumentReader::next() {
  inline_value_ = nullptr;
  if (bundle_ && *bundle_ != '\0') {
    short_name_[1] = *bundle_++;
    name_ = std::string_view(short_name_, 2);
    return true;
  }
  bundle_ = nullptr;
  if (double_dash_ || index_ >= argc_) return false;
  if (++index_ >= argc_) return false;
  const char* arg = argv_[index_];
  if (std::strcmp(arg, "--") == 0) {
    double_dash_ = true;
    return false;
  }
  // "-" alone is an operand, as it is for every GNU tool.
  option_ = arg[0] == '-' && arg[1] != '\0';
  if (!option_) {
    name_ = arg;
    return true;
  }
  if (arg[1] != '-') {
    bundle_ = arg + 1;
    return next();
  }
  const char* eq = std::strchr(arg, '=');
  name_ = eq ? std::string_view(arg, static_cast<std::size_t>(eq - arg)) : std::string_view(arg);
  if (eq) inline_value_ = eq + 1;
  return true;
}

std::string_view ArgumentReader::value() {
  if (inline_value_) return inline_value_;
  if (bundle_ && *bundle_ != '\0') {
    const char* rest = bundle_;
    bundle_ = nullptr;
    return rest;
  }
  if (index_ + 1 >= argc_)
    throw UsageError(command_, "option '" + std::string(name_) + "' requires a value");
  return argv_[++index_];
}

std::optional<std::string_view> ArgumentReader::value_if(bool (*accept)(std::string_view)) {
  if (inline_value_ || (bundle_ && *bundle_ != '\0')) return value();
  if (index_ + 1 < argc_ && accept(argv_[index_ + 1])) return argv_[++index_];
  return std::nullopt;
}

void ArgumentReader::expect_no_value() const {
  if (inline_value_)
    throw UsageError(command_, "option '" + std::string(name_) + "' takes no value");
}

void ArgumentReader::unknown_option() const {
  throw UsageError(command_, "unrecognized option " + quoted(bundle_ ? name_ : argv_[index_]));
}

std::string ArgumentReader::single_operand(std::vector<std::string>& operands) const {
  if (double_dash_)
    for (int i = index_ + 1; i < argc_; ++i) operands.emplace_back(argv_[i]);
  if (operands.empty()) throw UsageError(command_, "missing LOCKFILE");
  if (operands.size() > 1) throw UsageError(command_, "extra operand " + quoted(operands[1]));
  expect_lock_file(command_, operands.front());
  return operands.front();
}

void expect_lock_file(const std::string& command, const std::string& lock_file) {
  if (lock_file.empty()) throw UsageError(command, "LOCKFILE is empty (an unset variable?)");
}

bool is_seconds(std::string_view text) noexcept {
  // Digits with at most one '.'; no sign, exponent, "inf" or spaces, all
  // of which strtod alone would accept.
  bool seen_digit = false, seen_dot = false;
  for (char c : text) {
    if (c >= '0' && c <= '9')
      seen_digit = true;
    else if (c == '.' && !seen_dot)
      seen_dot = true;
    else
      return false;
  }
  return seen_digit;
}

std::chrono::milliseconds parse_seconds(const std::string& command, std::string_view option,
                                        std::string_view text) {
  if (!is_seconds(text))
    throw UsageError(command, "invalid value " + quoted(text) + " for '" + std::string(option) +
                                  "': expected a number of seconds, like 10 or 0.5");
  std::string copy(text);
  double seconds = std::strtod(copy.c_str(), nullptr);
  if (!(seconds <= kMaxSeconds))
    throw UsageError(command, "value " + quoted(text) + " for '" + std::string(option) +
                                  "' is too large");
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000.0)));
}

int parse_exit_status(const std::string& command, std::string_view option, std::string_view text) {
  int value = 0;
  bool ok = !text.empty() && text.size() <= 3;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    value = value * 10 + (c - '0');
  }
  if (!ok || value > 255)
    throw UsageError(command, "invalid value " + quoted(text) + " for '" + std::string(option) +
                                  "': expected an exit status from 0 to 255");
  return value;
}

}  // namespace pidlock::cli
