// pidlock break: remove a stale lock file, and nothing else.
#include "arguments.hpp"
#include "cli.hpp"
#include "inspection_output.hpp"

#include <pidlock/error.hpp>
#include <pidlock/lock_manager.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace pidlock::cli {

namespace {

const char kBreakHelp[] =
    "Usage: pidlock break LOCKFILE\n"
    "Remove LOCKFILE if, and only if, its holder is gone (the lock is stale).\n"
    "A held lock, or one whose state cannot be decided, is left alone. The\n"
    "check and the removal are one race-free step: a lock that a new holder\n"
    "takes meanwhile is never removed. Never removes anything but a regular\n"
    "lock file (no symbolic link, directory, FIFO or hard-linked file), and\n"
    "only a file that is recognisably a lock record (see pidlock(1), FILES).\n"
    "\n"
    "      --verbose  show the library's log records\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Exit status: 0 if the stale lock was removed or there was none, 75 if\n"
    "the lock is held or unknown, 64 on a usage error, 77 on a permission\n"
    "error, 73 if the lock file's folder does not exist, 74 on an I/O\n"
    "error, 70 otherwise.\n";

}  // namespace

int break_main(int argc, char** argv) {
  ArgumentReader reader("break", argc, argv);
  std::vector<std::string> operands;
  while (reader.next()) {
    if (!reader.at_option()) {
      operands.emplace_back(reader.operand());
      continue;
    }
    reader.expect_no_value();
    if (reader.option() == "--help" || reader.option() == "-h") {
      std::fputs(kBreakHelp, stdout);
      return kOk;
    } else if (reader.option() == "--verbose") {
      enable_verbose_logging();
    } else {
      reader.unknown_option();
    }
  }
  const std::string lock_file = reader.single_operand(operands);

  LockManager manager;
  BreakResult result;
  try {
    result = manager.break_stale(lock_file);
  } catch (const Error& e) {
    print_error(e.what());
    return exit_status_for(e.code());
  }
  const Inspection& in = result.inspection;
  std::string holder = holder_summary(in);
  if (result.removed) {
    std::printf("removed stale lock file %s (%s%s%s)\n", lock_file.c_str(), in.detail.c_str(),
                holder.empty() ? "" : "; ", holder.c_str());
    return kOk;
  }
  switch (in.verdict) {
    case Verdict::kFree:
      std::printf("no lock file at %s; nothing to remove\n", lock_file.c_str());
      return kOk;
    case Verdict::kHeld:
      print_error("not removing lock file \"" + lock_file + "\": it is held (" + in.detail + ")" +
                  (holder.empty() ? "" : "; holder: " + holder));
      return kHeld;
    case Verdict::kUnknown:
      if (in.reason == Reason::kNotALockRecord) {
        print_error("not removing \"" + lock_file + "\": " + in.detail);
        return kHeld;
      }
      print_error("not removing lock file \"" + lock_file + "\": its holder cannot be checked (" +
                  in.detail + "), so it counts as held" + (holder.empty() ? "" : "; holder: " + holder) +
                  ". If you are sure no holder is running, remove the file yourself.");
      return kHeld;
    case Verdict::kStale:
      // Stale, yet not removed: someone else removed or replaced it between
      // the verdict and the removal. Nothing of ours to do.
      std::printf("lock file %s was removed or replaced meanwhile; nothing removed\n", lock_file.c_str());
      return kOk;
  }
  return kSoftware;
}

}  // namespace pidlock::cli
