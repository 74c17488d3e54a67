// pidlock status: the verdict on a lock file and its evidence.
#include "arguments.hpp"
#include "cli.hpp"
#include "directory_hint.hpp"
#include "inspection_output.hpp"
#include "lock_holders.hpp"

#include <pidlock/error.hpp>
#include <pidlock/lock_manager.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace pidlock::cli {

namespace {

const char kStatusHelp[] =
    "Usage: pidlock status [--json] LOCKFILE\n"
    "Show whether LOCKFILE is held, and the evidence: who holds it and why\n"
    "that holder is judged alive or gone. Never takes or changes the lock.\n"
    "Reads pidlock lock files, PostgreSQL's postmaster.pid and socket .lock\n"
    "files, and plain pid files.\n"
    "\n"
    "      --json     print one JSON object instead\n"
    "      --verbose  show the library's log records\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Exit status, as an LSB init script's status action: 0 held, 1 stale\n"
    "(the holder is gone, the file is still there), 3 free (no lock file),\n"
    "4 unknown (the evidence cannot decide, or the file cannot be read).\n"
    "64 on a usage error.\n";

int exit_status_for(Verdict verdict) {
  switch (verdict) {
    case Verdict::kHeld: return kStatusHeld;
    case Verdict::kStale: return kStatusStale;
    case Verdict::kFree: return kStatusFree;
    case Verdict::kUnknown: return kStatusUnknown;
  }
  return kStatusUnknown;
}

}  // namespace

int status_main(int argc, char** argv) {
  ArgumentReader reader("status", argc, argv);
  bool json = false;
  std::vector<std::string> operands;
  while (reader.next()) {
    if (!reader.at_option()) {
      operands.emplace_back(reader.operand());
      continue;
    }
    reader.expect_no_value();
    if (reader.option() == "--help" || reader.option() == "-h") {
      std::fputs(kStatusHelp, stdout);
      return kOk;
    } else if (reader.option() == "--json") {
      json = true;
    } else if (reader.option() == "--verbose") {
      enable_verbose_logging();
    } else {
      reader.unknown_option();
    }
  }
  const std::string lock_file = reader.single_operand(operands);

  LockManager manager;
  Inspection inspection;
  try {
    inspection = manager.inspect(lock_file);
  } catch (const Error& e) {
    // Not knowing is "unknown" (4), whatever the reason: a symlink, a
    // directory, a permission problem. The message says which. A store
    // that is not what the address says is no verdict at all (G10).
    const std::string message = e.what() + directory_hint(lock_file, "postmaster.pid");
    if (json) std::printf("%s\n", error_json(lock_file, message).c_str());
    print_error(message);
    return e.code() == errc::misconfigured ? static_cast<int>(kConfig) : static_cast<int>(kStatusUnknown);
  }
  // Held by the kernel lock: name the processes that hold it, which need
  // not be the recorded one (a job's background child that inherited it).
  std::vector<LockHolder> holders;
  if (inspection.reason == Reason::kKernelLockHeld)
    holders = kernel_lock_holders(lock_file);
  if (json)
    std::printf("%s\n", inspection_json(lock_file, inspection, &holders).c_str());
  else
    std::fputs(describe_inspection(lock_file, inspection, &holders).c_str(), stdout);
  return exit_status_for(inspection.verdict);
}

}  // namespace pidlock::cli
