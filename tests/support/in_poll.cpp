#include "support/in_poll.hpp"

#include "support/proc.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace pidlock_test {

namespace {

// Is the thread in poll (or ppoll) with a timeout other than zero, or
// queued for a lock in fcntl(F_OFD_SETLKW)? A zero-timeout poll is a
// readiness probe (Canceller::cancelled), not a wait.
bool sleeping_in_poll(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  long nr = -1;
  if (!(in >> nr)) return false;  // "running"
  std::string first, second, third;
  in >> first >> second >> third;
  if (nr == SYS_fcntl) return std::stol(second, nullptr, 16) == F_OFD_SETLKW;
#ifdef SYS_poll
  if (nr == SYS_poll) return third != "0x0";
#endif
  return nr == SYS_ppoll;  // the timeout is a pointer there: any wait counts
}

}  // namespace

bool wait_until_sleeping_in_poll(pid_t pid, pid_t tid, std::chrono::milliseconds timeout) {
  // The only polling loop of its kind: it watches for a state, it does not
  // guess a delay, and it needs the state to hold for two looks.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = sleeping_in_poll(pid, tid) ? seen + 1 : 0;
    if (seen >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

std::future<bool> when_this_thread_waits(std::function<void()> action) {
  pid_t pid = ::getpid();
  pid_t tid = current_tid();
  return std::async(std::launch::async, [pid, tid, action = std::move(action)] {
    bool waiting = wait_until_sleeping_in_poll(pid, tid);
    action();  // unconditionally, so the waiter never hangs
    return waiting;
  });
}

}  // namespace pidlock_test
