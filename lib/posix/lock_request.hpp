// A place in the kernel's queue for a lock file's holder lock, kept by a
// thread of its own, for waits that must be able to end early.
//
// A waiter blocked in F_OFD_SETLKW is granted the lock in its turn and woken
// alone (see System::wait_lock), but nothing ends that call except the lock
// or a signal handler. A wait with a deadline or a Canceller therefore
// leaves the call to a thread of pidlock's own, and sleeps in poll() on
// done_fd(), its canceller and its file watch; to give up, it cancels that
// thread (pthread_cancel: F_OFD_SETLKW is a cancellation point, and glibc
// interrupts it with a signal of its own, so the host's signal handlers are
// never touched: the thread blocks every other signal) and joins it. glibc
// loads libgcc_s at the first cancel, as every program that cancels a
// thread needs it.
#ifndef PIDLOCK_POSIX_LOCK_REQUEST_HPP
#define PIDLOCK_POSIX_LOCK_REQUEST_HPP

#include "posix/syscalls.hpp"

#include <pthread.h>

#include <atomic>

namespace pidlock::detail {

class LockRequest {
 public:
  LockRequest() = default;
  ~LockRequest() { (void)stop(); }
  LockRequest(const LockRequest&) = delete;
  LockRequest& operator=(const LockRequest&) = delete;

  // Queues for the holder lock of `fd`, which must stay open until stop().
  // False, with errno set, if the thread could not be started.
  bool start(int fd);
  bool active() const noexcept { return running_; }
  // Readable once the request is answered: the lock is ours, or the call
  // failed.
  int done_fd() const noexcept { return done_.get(); }
  bool answered() const noexcept { return result_.load(std::memory_order_acquire) != kPending; }

  // Ends the request: leaves the queue if still in it, and joins the
  // thread. True if the lock is ours (granted, perhaps just as the thread
  // was cancelled, which glibc does not report: the description is asked);
  // false with *err the errno of a failed call, or 0 if it left the queue.
  bool stop(int* err = nullptr);

 private:
  static constexpr int kPending = -1;
  static void* run(void* self);

  int fd_ = -1;
  UniqueFd done_;
  pthread_t thread_{};
  bool running_ = false;
  std::atomic<int> result_{kPending};  // 0: locked; > 0: errno
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_POSIX_LOCK_REQUEST_HPP
