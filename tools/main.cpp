// pidlock: the command-line tool. See docs/pidlock.1.
#include "cli.hpp"
#include "process_setup.hpp"

#include <pidlock/logging.hpp>
#include <pidlock/version.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

namespace {

const char kHelp[] =
    "Usage: pidlock COMMAND [OPTION]... LOCKFILE ...\n"
    "Exclusive ownership of a resource through a lock file, exact and\n"
    "race-free: a lock is held exactly as long as its holder lives.\n"
    "\n"
    "Commands:\n"
    "  run [--wait] [--timeout SECONDS] [--conflict-exit-code N] [--quiet]\n"
    "      [--mode OCTAL] [--group GROUP] [--data-dir DIR] [--kill-after SECONDS]\n"
    "      LOCKFILE [--] COMMAND [ARG]...   (flock(1)'s -n -w -E -c -o -x too)\n"
    "                   hold LOCKFILE while COMMAND runs\n"
    "  status [--json] LOCKFILE\n"
    "                   show whether LOCKFILE is held, and the evidence\n"
    "  break LOCKFILE   remove LOCKFILE if its holder is gone\n"
    "  wait [--timeout SECONDS] LOCKFILE\n"
    "                   wait until LOCKFILE is free or stale\n"
    "\n"
    "  -h, --help       show this help and exit ('pidlock COMMAND --help'\n"
    "                   for a command's own)\n"
    "      --version    show the version and exit\n"
    "\n"
    "LOCKFILE may also be an etcd lock: etcd://HOST:PORT[,...]/prefix/name.\n"
    "\n"
    "Exit status: 0 success, 75 the lock is held, 64 usage error, 73 no\n"
    "such folder for the lock file, 77 permission denied, 78 misconfigured\n"
    "lock address or store, 74 I/O error, 70 other failure; `run` exits\n"
    "with COMMAND's status (79 if the lock was lost meanwhile), `status`\n"
    "with 0/1/3/4\n"
    "(held/stale/free/unknown). See pidlock(1).\n";

void print_usage_error(const pidlock::cli::UsageError& e) {
  const std::string& command = e.command();
  std::string where = command.empty() ? "pidlock" : "pidlock " + command;
  std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", where.c_str(), e.what(), where.c_str());
}

int dispatch(int argc, char** argv) {
  using namespace pidlock::cli;
  if (argc < 2) throw UsageError("", "missing COMMAND");
  const char* command = argv[1];
  // Each command sees its own name as argv[0].
  if (std::strcmp(command, "run") == 0) return run_main(argc - 1, argv + 1);
  if (std::strcmp(command, "status") == 0) return status_main(argc - 1, argv + 1);
  if (std::strcmp(command, "break") == 0) return break_main(argc - 1, argv + 1);
  if (std::strcmp(command, "wait") == 0) return wait_main(argc - 1, argv + 1);
  if (std::strcmp(command, "--help") == 0 || std::strcmp(command, "-h") == 0) {
    if (argc > 2) throw UsageError("", std::string("unexpected argument '") + argv[2] + "'");
    std::fputs(kHelp, stdout);
    return kOk;
  }
  if (std::strcmp(command, "--version") == 0) {
    if (argc > 2) throw UsageError("", std::string("unexpected argument '") + argv[2] + "'");
    std::puts("pidlock " PIDLOCK_VERSION_STRING);
    return kOk;
  }
  if (command[0] == '-') throw UsageError("", std::string("unrecognized option '") + command + "'");
  throw UsageError("", std::string("unknown command '") + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  pidlock::cli::prepare_process();
  // The tool prints its own messages; the library prints nothing unless
  // --verbose installs a handler (verbose_log.cpp).
  try {
    return dispatch(argc, argv);
  } catch (const pidlock::cli::UsageError& e) {
    print_usage_error(e);
    return pidlock::cli::kUsage;
  } catch (const std::bad_alloc&) {
    pidlock::cli::print_error("out of memory");
    return pidlock::cli::kSoftware;
  } catch (const std::exception& e) {
    pidlock::cli::print_error(e.what());
    return pidlock::cli::kSoftware;
  }
}
