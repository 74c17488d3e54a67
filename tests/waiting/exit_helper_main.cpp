// A daemon-shaped program for the "normal exit" test: its LockManager is a
// namespace-scope global, as a daemon's often is, constructed before main()
// and destroyed by exit() after main() returns. It acquires the lock files
// named on the command line (a "socket:" prefix means lock_unix_socket),
// leaks the handles so that only ~LockManager can release them, prints
// "ready" and returns 0.
//
// Usage: pidlock_waiting_exit_helper {off|info} PATH...
//   off/info: pidlock's log threshold while it runs.
#include <pidlock/pidlock.hpp>

#include <cstdio>
#include <cstring>
#include <exception>

namespace {
pidlock::LockManager g_locks;
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  pidlock::set_log_threshold(std::strcmp(argv[1], "off") == 0 ? pidlock::LogThreshold::kOff
                                                              : pidlock::LogThreshold::kInfo);
  try {
    for (int i = 2; i < argc; ++i) {
      const char* arg = argv[i];
      if (std::strncmp(arg, "socket:", 7) == 0)
        new pidlock::LockHandle(pidlock::lock_unix_socket(g_locks, arg + 7));  // leaked on purpose
      else
        new pidlock::LockHandle(g_locks.acquire(arg));  // leaked on purpose
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exit helper: %s\n", e.what());
    return 1;
  }
  std::printf("ready %zu\n", g_locks.held_count());
  std::fflush(stdout);  // before exit(), which is what the test watches
  return 0;
}
