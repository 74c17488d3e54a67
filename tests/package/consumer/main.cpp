// A program that embeds pidlock the way a user would, built against the
// installed package or the source tree by check_consumers.sh.
#include <pidlock/pidlock.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  pidlock::LockManager manager;
  std::string lock = std::string(argv[1]) + "/consumer.pid";
  pidlock::LockHandle handle = manager.acquire(lock);
  if (handle.record().pid != ::getpid()) return 3;
  pidlock::Inspection seen = manager.inspect(lock);
  if (seen.verdict != pidlock::Verdict::kHeld) return 4;
  if (handle.release()) return 5;
  if (::access(lock.c_str(), F_OK) == 0) return 6;
  std::printf("consumer ok (pidlock %s)\n", PIDLOCK_VERSION_STRING);
  return 0;
}
