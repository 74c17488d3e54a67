// Reading a command's arguments.
//
// Written by hand rather than with getopt_long, whose messages name neither
// the command nor our exit status, and rather than with
// Boost.Program_options, whose static set-up would dominate the start-up
// of `pidlock run` (see bench/cli_startup.sh).
#ifndef PIDLOCK_TOOLS_ARGUMENTS_HPP
#define PIDLOCK_TOOLS_ARGUMENTS_HPP

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pidlock::cli {

// Walks arguments in the GNU style: options ("--wait", "--timeout 2",
// "--timeout=2", "-h") and operands in any order, until the end or "--".
// Short options may be bundled as getopt allows: "-nx" is "-n -x", and
// "-w5" or "-nw 5" give "-w" the value 5. Every mistake throws UsageError
// naming the command.
class ArgumentReader {
 public:
  // argv[0] is the command's name and is skipped.
  ArgumentReader(std::string command, int argc, char** argv);

  // Moves to the next argument. Returns false at the end, or at "--"
  // (then double_dash() is true and rest() is the index after it).
  bool next();
  bool at_option() const noexcept { return option_; }
  // The current option's name, without any "=value".
  std::string_view option() const noexcept { return name_; }
  // The current operand.
  std::string_view operand() const noexcept { return name_; }
  // The current option's value: after '=', the rest of a bundle of short
  // options, or the next argument.
  std::string_view value();
  // An optional value: the one value() would give, if it is after '=' or
  // in a bundle, or if the next argument passes `accept`; else nothing,
  // and the next argument stays where it is.
  std::optional<std::string_view> value_if(bool (*accept)(std::string_view));
  // Refuses "--flag=value" for an option that takes none.
  void expect_no_value() const;
  [[noreturn]] void unknown_option() const;

  // After next() returned false: appends the arguments after "--", if
  // any, to `operands`, and returns the only one, or throws UsageError
  // naming what is missing, extra or empty ("LOCKFILE").
  std::string single_operand(std::vector<std::string>& operands) const;

  bool double_dash() const noexcept { return double_dash_; }
  // The index in argv of the current argument.
  int position() const noexcept { return index_; }
  int rest() const noexcept { return index_ + 1; }
  const std::string& command() const noexcept { return command_; }

 private:
  std::string command_;
  int argc_;
  char** argv_;
  int index_ = 0;
  bool option_ = false;
  bool double_dash_ = false;
  std::string_view name_;
  const char* inline_value_ = nullptr;
  // The short options of a bundle ("-nx") still to come, and the current
  // one's name ("-n").
  const char* bundle_ = nullptr;
  char short_name_[3] = {'-', '\0', '\0'};
};

// Throws UsageError unless `lock_file` names something: an empty LOCKFILE
// ("$LOCK" of an unset variable) is a mistake on the command line.
void expect_lock_file(const std::string& command, const std::string& lock_file);

// Is `text` a number of seconds that parse_seconds() accepts?
bool is_seconds(std::string_view text) noexcept;

// Parses a non-negative number of seconds with an optional fraction
// ("2", "0.3", ".5"), rounded up to whole milliseconds.
std::chrono::milliseconds parse_seconds(const std::string& command, std::string_view option,
                                        std::string_view text);

// Parses an exit status, 0 to 255.
int parse_exit_status(const std::string& command, std::string_view option, std::string_view text);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_ARGUMENTS_HPP
