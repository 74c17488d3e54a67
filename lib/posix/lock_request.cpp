#include "posix/lock_request.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace pidlock::detail {

bool LockRequest::start(int fd) {
  (void)stop();
  done_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done_.valid()) return false;
  fd_ = fd;
  result_.store(kPending, std::memory_order_relaxed);
  // The thread blocks every signal (it inherits the mask it is created
  // with): the host's handlers must not run on it, and a handler that
  // interrupted the call would send the request to the end of the queue.
  // glibc keeps its own cancellation signal deliverable.
  sigset_t all, previous;
  sigfillset(&all);
  (void)::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const int e = ::pthread_create(&thread_, nullptr, &LockRequest::run, this);
  (void)::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (e != 0) {
    errno = e;
    return false;
  }
  running_ = true;
  return true;
}

// The only cancellation point is the lock call itself: once it returns,
// its answer is stored before anything else can act on a cancel, and the
// eventfd write runs with cancellation disabled.
void* LockRequest::run(void* self) {
  auto* r = static_cast<LockRequest*>(self);
  int rc;
  do {
    rc = sys().wait_lock(r->fd_);
  } while (rc != 0 && errno == EINTR);
  r->result_.store(rc == 0 ? 0 : (errno > 0 ? errno : EIO), std::memory_order_release);
  (void)::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
  const std::uint64_t one = 1;
  (void)!::write(r->done_.get(), &one, sizeof one);
  return nullptr;
}

bool LockRequest::stop(int* err) {
  if (err) *err = 0;
  if (!running_) return false;
  if (!answered()) (void)::pthread_cancel(thread_);
  (void)::pthread_join(thread_, nullptr);
  running_ = false;
  int result = result_.load(std::memory_order_acquire);
  done_.reset();
  // glibc lets a cancel act on the way back from a lock call that has
  // already been granted: the thread is gone without saying so. A lock
  // this description holds is ours to keep (F_OFD_SETLK on it succeeds),
  // and one that is free now is as good as granted.
  if (result == kPending && sys().try_lock(fd_) == KernelLock::kAcquired) result = 0;
  if (result == 0) return true;
  if (err && result != kPending) *err = result;
  return false;
}

}  // namespace pidlock::detail
