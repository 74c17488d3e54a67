// The command line of `pidlock run`: today's spellings and flock(1)'s.
//
// pidlock run [OPTION]... LOCKFILE [--] COMMAND [ARG]...
// pidlock run [OPTION]... LOCKFILE -c 'COMMAND STRING'
//
// COMMAND starts at the first operand after LOCKFILE (as with flock(1)),
// or after "--"; everything from there on is COMMAND's. Options may come
// before or after LOCKFILE. See docs/pidlock.1, "Compared with flock(1)".
#ifndef PIDLOCK_TOOLS_RUN_ARGUMENTS_HPP
#define PIDLOCK_TOOLS_RUN_ARGUMENTS_HPP

#include "cli.hpp"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::cli {

struct RunArguments {
  std::string lock_file;
  // COMMAND and its arguments, null-terminated, as execvp wants them. With
  // -c: "/bin/sh", "-c", the string. Points into argv (or at constants).
  std::vector<char*> command;
  // The name of COMMAND for messages: argv's first word or the -c string.
  std::string command_name;
  bool wait = false;
  std::optional<std::chrono::milliseconds> timeout;
  std::string timeout_text;
  std::string data_directory;
  int conflict_exit_status = kHeld;
  std::optional<std::chrono::milliseconds> kill_after;
  // -o/--close: COMMAND does not inherit the lock; it lasts as long as
  // pidlock itself.
  bool close_before_exec = false;
  // -q/--quiet: no message when the lock is held (or the wait times out).
  bool quiet = false;
  mode_t mode = 0600;
  std::optional<gid_t> group;
};

// Parses `run`'s arguments (argv[0] is "run"). Returns nothing after
// printing the help for --help; throws UsageError for every mistake.
std::optional<RunArguments> parse_run_arguments(int argc, char** argv);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_RUN_ARGUMENTS_HPP
