// Shared pieces of the pidlock command-line tool (see docs/pidlock.1).
//
// Each command is a function taking its own arguments (argv[0] is the
// command's name) and returning the process's exit status. Malformed
// command lines throw UsageError; main() prints it with a hint and exits
// with kUsage. Everything else is printed by the command itself, since only
// it knows which messages belong on stdout and which on stderr.
#ifndef PIDLOCK_TOOLS_CLI_HPP
#define PIDLOCK_TOOLS_CLI_HPP

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace pidlock::cli {

// Exit statuses, from sysexits.h so that cron mails and monitoring can tell
// "someone else has it" (EX_TEMPFAIL) from a real failure. `run` exits with
// COMMAND's own status instead once COMMAND has started.
enum ExitStatus : int {
  kOk = 0,
  kUsage = 64,         // EX_USAGE: malformed command line
  kSoftware = 70,      // EX_SOFTWARE: anything not listed below
  kCannotCreate = 73,  // EX_CANTCREAT: no such folder for the lock file
                       //   (ENOENT, ENOTDIR, ENAMETOOLONG)
  kIoError = 74,       // EX_IOERR: EIO, ENOSPC, EROFS, ...
  kHeld = 75,          // EX_TEMPFAIL: the lock is held (or unknown)
  kNoPermission = 77,  // EX_NOPERM: EACCES, EPERM
  kConfig = 78,        // EX_CONFIG: the lock's address or store is misconfigured
                       //   (errc::misconfigured: not etcd, bad TLS files, ...)
  kLockLost = 79,      // run: the lock was lost while COMMAND ran (an etcd
                       //   lock's COMMAND was stopped; a lock file was found
                       //   deleted, replaced or rewritten by someone else)
  kCannotExecute = 126,  // run: COMMAND found but not executable
  kNotFound = 127,       // run: COMMAND not found
};

// `status` exits as an LSB init script's status action does.
enum StatusExit : int {
  kStatusHeld = 0,
  kStatusStale = 1,  // "program is dead and /var/run pid file exists"
  kStatusFree = 3,   // "program is not running"
  kStatusUnknown = 4,
};

class UsageError : public std::runtime_error {
 public:
  // `command` is "run", "status", ... or empty for the top level.
  UsageError(std::string command, const std::string& message)
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const noexcept { return command_; }

 private:
  std::string command_;
};

int run_main(int argc, char** argv);
int status_main(int argc, char** argv);
int break_main(int argc, char** argv);
int wait_main(int argc, char** argv);

// Prints "pidlock: <message>" and a newline to stderr.
void print_error(std::string_view message);

// The exit status for a failure other than a usage error (see ExitStatus).
int exit_status_for(const std::error_code& code) noexcept;

// Turns on the library's own log records (to stderr) for --verbose: installs
// a log handler, without which the library prints nothing.
void enable_verbose_logging() noexcept;

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_CLI_HPP
