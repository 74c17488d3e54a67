#include "posix/lock_request.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace pidlock::detail {

namespace {

// Enough for the lock call through the seam, with room for sanitizers.
constexpr size_t kStackSize = 256 * 1024;

}  // namespace

bool LockRequest::start(int fd) {
  (void)stop();
  done_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done_.valid()) return false;
  fd_ = fd;
  result_.store(kPending, std::memory_order_relaxed);
  pthread_attr_t attr;
  if (int e = ::pthread_attr_init(&attr)) {
    errno = e;
    return false;
  }
  (void)::pthread_attr_setstacksize(&attr, kStackSize);
  const int e = ::pthread_create(&thread_, &attr, &LockRequest::run, this);
  (void)::pthread_attr_destroy(&attr);
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
  const int result = result_.load(std::memory_order_acquire);
  done_.reset();
  if (result == 0) return true;
  if (err && result != kPending) *err = result;
  return false;
}

}  // namespace pidlock::detail
