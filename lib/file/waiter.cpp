#include "file/waiter.hpp"

#include <pidlock/canceller.hpp>

#include <poll.h>

#include <thread>

namespace pidlock::detail {

Waiter::Waiter(std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller,
               std::chrono::milliseconds recheck_interval)
    : notifier_(thread_notifier()), canceller_(canceller), recheck_(recheck_interval) {
  if (timeout) deadline_ = std::chrono::steady_clock::now() + *timeout;
}

Failure Waiter::start() {
  if (notifier_->error()) return Failure{notifier_->error(), "create inotify instance", ""};
  notifier_->drain();  // what retired watches reported since the last wait
  return {};
}

Wake Waiter::sleep(Examined& found) {
  settles_ = 0;
  const Inspection& insp = found.inspection;
  if (found.kernel != KernelEvidence::kHeld && found.file.fd.valid()) {
    // No kernel-lock holder to wait for: stop watching closes, so that
    // closing our own writable descriptor below does not wake us.
    if (std::error_code ec = notifier_->watch_file(found.file.fd.get(), FileEvents::kRenamed)) {
      errno = ec.value();
      return Wake::kError;
    }
  }
  found.file.fd.reset();
  if (found.kernel != KernelEvidence::kHeld && insp.holder &&
      (insp.reason == Reason::kPidAlive || insp.reason == Reason::kPidAliveOtherUser)) {
    if (pid_watched_ != insp.holder->pid) {
      pidfd_ = open_process_watch(insp.holder->pid);
      pid_watched_ = insp.holder->pid;
      if (!pidfd_.valid()) return Wake::kEvent;  // gone already, or no pidfd: look again
    }
  } else {
    pidfd_.reset();
    pid_watched_ = 0;
  }
  return sleep_for_events();
}

Wake Waiter::sleep_announced() {
  settles_ = 0;
  pidfd_.reset();
  pid_watched_ = 0;
  return sleep_for_events();
}

Wake Waiter::queue_for_lock(int fd, LockRequest& request, bool* locked) {
  *locked = false;
  if (!deadline_ && !canceller_) {
    // Nothing can end this wait but the lock: block in the call itself, as
    // flock(1) does. A signal handler that ran sends us back to the end of
    // the queue.
    if (retry_eintr([&] { return sys().wait_lock(fd); }) != 0) return Wake::kError;
    *locked = true;
    return Wake::kEvent;
  }
  if (!request.active() && !request.start(fd)) return Wake::kError;
  settles_ = 0;
  pidfd_.reset();
  pid_watched_ = 0;
  Wake w = request.answered() ? Wake::kEvent : sleep_for_events(request.done_fd());
  if (w == Wake::kEvent && !request.answered()) return w;  // the name may have moved
  // Answered, or the wait ends: a lock granted at the last moment is ours.
  const int sleep_errno = errno;
  int err = 0;
  if (request.stop(&err)) {
    *locked = true;
    return Wake::kEvent;
  }
  if (err != 0) {
    errno = err;
    return Wake::kError;
  }
  errno = sleep_errno;
  return w;
}

bool Waiter::settle_after_close(KernelEvidence kernel) {
  if (kernel != KernelEvidence::kHeld || !saw_close() || settles_ >= kContestedRetries) return false;
  if (deadline_ && std::chrono::steady_clock::now() >= *deadline_) return false;
  ++settles_;
  std::this_thread::sleep_for(kContestedPause);
  return true;
}

// Sleeps until the watch or the pidfd reports, the recheck interval passes
// (kEvent: look again) or the deadline does (kTimeout).
Wake Waiter::sleep_for_events(int extra_fd) {
  std::chrono::steady_clock::duration limit = recheck_;
  bool deadline_first = false;
  if (deadline_) {
    auto left = *deadline_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return Wake::kTimeout;
    if (left < limit) {
      limit = left;
      deadline_first = true;
    }
  }
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    Wake w = sleep_until({notifier_->fd(), pidfd_.get(), extra_fd}, canceller_ ? canceller_->native_handle() : -1,
                         until - std::chrono::steady_clock::now());
    rechecking_ = w == Wake::kTimeout && !deadline_first;
    if (rechecking_) return Wake::kEvent;  // periodic recheck
    if (w != Wake::kEvent) return w;
    // Events of retired watches (files waited on before) are not worth
    // another look; only the file we watch, or the holder's exit, is.
    if (notifier_->drain() || readable(pidfd_.get()) || readable(extra_fd)) return Wake::kEvent;
  }
}

// One inotify instance per thread, reused by its waits: closing an
// instance waits for an RCU grace period (hundreds of microseconds to
// milliseconds), which would otherwise sit in every hand-off. A forked
// child gets its own instead of sharing its parent's. Shared, not
// borrowed: a wait nested in this one (a log sink that acquires) may
// replace the thread's instance, and this wait keeps the one it uses.
std::shared_ptr<ChangeNotifier> Waiter::thread_notifier() {
  thread_local std::shared_ptr<ChangeNotifier> notifier;
  thread_local pid_t owner = 0;
  pid_t self = sys().getpid();
  if (!notifier || owner != self || notifier->error() || notifier.use_count() > 1) {
    notifier = std::make_shared<ChangeNotifier>();
    owner = self;
  }
  return notifier;
}

bool Waiter::readable(int fd) {
  if (fd < 0) return false;
  struct pollfd p {fd, POLLIN, 0};
  return sys().poll(&p, 1, 0) == 1;
}

}  // namespace pidlock::detail
