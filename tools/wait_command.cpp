// pidlock wait: wait until a lock is free or stale, without taking it.
#include "arguments.hpp"
#include "cli.hpp"
#include "inspection_output.hpp"

#include <pidlock/error.hpp>
#include <pidlock/lock_manager.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::cli {

namespace {

const char kWaitHelp[] =
    "Usage: pidlock wait [--timeout SECONDS] LOCKFILE\n"
    "Wait until LOCKFILE is free or stale (its holder gone), without taking\n"
    "it. The wait sleeps until the kernel reports the holder's release or\n"
    "death; it does not poll.\n"
    "\n"
    "      --timeout SECONDS  give up after SECONDS (fractions allowed)\n"
    "      --verbose          show the library's log records\n"
    "  -h, --help             show this help and exit\n"
    "\n"
    "Exit status: 0 once the lock is free or stale, 75 at the timeout, 64 on\n"
    "a usage error, 73 if the lock file's folder does not exist, 77 on a\n"
    "permission error, 74 on an I/O error, 70 otherwise.\n";

}  // namespace

int wait_main(int argc, char** argv) {
  ArgumentReader reader("wait", argc, argv);
  std::optional<std::chrono::milliseconds> timeout;
  std::string timeout_text;
  std::vector<std::string> operands;
  while (reader.next()) {
    if (!reader.at_option()) {
      operands.emplace_back(reader.operand());
    } else if (reader.option() == "--help" || reader.option() == "-h") {
      reader.expect_no_value();
      std::fputs(kWaitHelp, stdout);
      return kOk;
    } else if (reader.option() == "--timeout") {
      timeout_text = std::string(reader.value());
      timeout = parse_seconds("wait", reader.option(), timeout_text);
    } else if (reader.option() == "--verbose") {
      reader.expect_no_value();
      enable_verbose_logging();
    } else {
      reader.unknown_option();
    }
  }
  const std::string lock_file = reader.single_operand(operands);

  LockManager manager;
  std::error_code ec;
  // Ctrl-C simply ends the wait (default disposition): nothing is held.
  Inspection last = manager.wait_until_free(lock_file, timeout, nullptr, JudgeOptions{}, ec);
  if (!ec) return kOk;
  if (ec == errc::held) {
    std::string holder = holder_summary(last);
    print_error("timed out after " + timeout_text + " s waiting for lock file \"" + lock_file +
                "\": " + to_string(last.verdict) + " (" + last.detail + ")" +
                (holder.empty() ? "" : "; holder: " + holder));
    return kHeld;
  }
  print_error(describe_error(ec, "wait for lock file", lock_file));
  return exit_status_for(ec);
}

}  // namespace pidlock::cli
