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

// The system call a thread sleeps in, from /proc/PID/task/TID/syscall: its
// number and first three arguments; nr -1 if it runs ("running") or is gone.
struct BlockedCall {
  long nr = -1;
  std::string args[3];
};

BlockedCall blocked_call(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  BlockedCall call;
  if (!(in >> call.nr)) call.nr = -1;
  else in >> call.args[0] >> call.args[1] >> call.args[2];
  return call;
}

bool queued_for_lock(const BlockedCall& call) {
  return call.nr == SYS_fcntl && std::stol(call.args[1], nullptr, 16) == F_OFD_SETLKW;
}

// Is the thread in poll (or ppoll) with a timeout other than zero, or
// queued for a lock in fcntl(F_OFD_SETLKW)? A zero-timeout poll is a
// readiness probe (Canceller::cancelled), not a wait.
bool sleeping_in_poll(pid_t pid, pid_t tid) {
  const BlockedCall call = blocked_call(pid, tid);
  if (queued_for_lock(call)) return true;
#ifdef SYS_poll
  if (call.nr == SYS_poll) return call.args[2] != "0x0";
#endif
  return call.nr == SYS_ppoll;  // the timeout is a pointer there: any wait counts
}


// The only polling loop of its kind: it watches for a state, it does not
// guess a delay, and it needs the state to hold for two looks.
template <class State>
bool wait_until_seen_twice(State state, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = state() ? seen + 1 : 0;
    if (seen >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace

bool wait_until_sleeping_in_poll(pid_t pid, pid_t tid, std::chrono::milliseconds timeout) {
  return wait_until_seen_twice([&] { return sleeping_in_poll(pid, tid); }, timeout);
}

pid_t thread_queued_for_lock(pid_t pid) {
  for (pid_t tid : proc_tasks(pid))
    if (queued_for_lock(blocked_call(pid, tid))) return tid;
  return -1;
}

bool wait_until_queued_for_lock(pid_t pid, std::chrono::milliseconds timeout) {
  return wait_until_seen_twice([&] { return thread_queued_for_lock(pid) > 0; }, timeout);
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
