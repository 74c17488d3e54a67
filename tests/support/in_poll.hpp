// Knowing that a waiter really waits: a thread asleep in poll() with a
// timeout -- where a waiting acquire, wait_until_free and wait_for_loss
// sleep -- or queued for a lock in fcntl(F_OFD_SETLKW), where a waiting
// acquire without deadline or canceller sleeps, as
// /proc/PID/task/TID/syscall shows. A test changes the lock
// only once its waiter is there, without guessing with a sleep.
#ifndef PIDLOCK_TESTS_SUPPORT_IN_POLL_HPP
#define PIDLOCK_TESTS_SUPPORT_IN_POLL_HPP

#include "support/pipe.hpp"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <future>

namespace pidlock_test {

// Blocks until thread `tid` of process `pid` sleeps in poll() with a
// non-zero timeout, or in F_OFD_SETLKW; false if that does not happen within `timeout`.
bool wait_until_sleeping_in_poll(pid_t pid, pid_t tid, std::chrono::milliseconds timeout = kPatience);
inline bool wait_until_sleeping_in_poll(pid_t pid, std::chrono::milliseconds timeout = kPatience) {
  return wait_until_sleeping_in_poll(pid, pid, timeout);
}

// Blocks until a thread of process `pid` is queued for a lock in
// fcntl(F_OFD_SETLKW) -- a waiting acquire's own thread when the wait has
// neither deadline nor canceller, the thread of its LockRequest when it
// has -- and stays there for two looks; false if that does not happen
// within `timeout`. The kernel queues such requests in the order they
// arrive, so a test that starts its waiters one at a time, each once the
// one before is seen here, knows their order in the queue.
bool wait_until_queued_for_lock(pid_t pid, std::chrono::milliseconds timeout = kPatience);
// The thread of `pid` queued for a lock in F_OFD_SETLKW now, or -1.
pid_t thread_queued_for_lock(pid_t pid);

// Runs `action` on another thread once the calling thread sleeps in
// poll(): the wait it is about to start is then really blocked, not about
// to look. The action runs in any case, so that the waiter never hangs;
// the future says whether the thread was seen waiting first.
std::future<bool> when_this_thread_waits(std::function<void()> action);

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_IN_POLL_HPP
