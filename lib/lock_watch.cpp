#include <pidlock/canceller.hpp>
#include <pidlock/error.hpp>
#include <pidlock/lock_watch.hpp>

#include "held_lock.hpp"
#include "posix/notifier.hpp"
#include "posix/system.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace pidlock {

using namespace detail;

struct LockWatch::Impl {
  // Serialises check(): its news and verdict must be consumed by one caller.
  mutable std::mutex mutex;
  std::shared_ptr<HeldLock> state;
  std::unique_ptr<LossSource> source;  // the store's news of a possible loss
  UniqueFd timer;
  UniqueFd epoll;
  // The first check() always rechecks: the lock may have been lost before
  // the watches were in place.
  bool pending = true;
  std::atomic<bool> lost{false};
  std::string reason;  // set once, with `lost`, under the mutex

  Failure start(std::chrono::milliseconds interval) {
    Failure failure;
    source = state->watch_for_loss(&failure);
    if (!source) return failure;
    return start_timer_and_epoll(interval, source->fd());
  }

  // The periodic recheck timer and the epoll set of `events` and the timer.
  Failure start_timer_and_epoll(std::chrono::milliseconds interval, int events) {
    timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer.valid()) return system_failure("create recheck timer");
    if (interval.count() > 0) {
      struct itimerspec spec {};
      spec.it_interval.tv_sec = interval.count() / 1000;
      spec.it_interval.tv_nsec = (interval.count() % 1000) * 1000000;
      spec.it_value = spec.it_interval;
      if (::timerfd_settime(timer.get(), 0, &spec, nullptr) != 0) return system_failure("arm recheck timer");
    }
    epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll.valid()) return system_failure("create epoll instance");
    for (int fd : {events, timer.get()}) {
      if (fd < 0) continue;
      struct epoll_event ev {};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return system_failure("add to epoll instance");
    }
    return {};
  }

  bool check() {
    std::lock_guard<std::mutex> guard(mutex);
    if (lost) return false;
    bool changed = source->consume();
    std::uint64_t expirations = 0;
    if (::read(timer.get(), &expirations, sizeof expirations) == sizeof expirations && expirations > 0)
      changed = true;
    if (!changed && !pending) return true;
    pending = false;
    std::error_code ec;
    std::string why;
    if (state->recheck(&why, &ec)) return true;
    if (ec) return true;  // could not tell (I/O error): logged; try again later
    reason = why;
    lost = true;
    return false;
  }
};

LockWatch::LockWatch() noexcept = default;
LockWatch::~LockWatch() = default;
LockWatch::LockWatch(LockWatch&&) noexcept = default;
LockWatch& LockWatch::operator=(LockWatch&&) noexcept = default;

LockWatch::LockWatch(const LockHandle& handle, std::chrono::milliseconds interval, std::error_code& ec) noexcept {
  ec.clear();
  try {
    auto impl = std::make_unique<Impl>();
    impl->state = HandleAccess::state(handle);
    if (!impl->state || !impl->state->active()) {
      ec = make_error_code(errc::not_held);
      return;
    }
    if (Failure f = impl->start(interval)) {
      log_failure(f, impl->state->path().string());
      ec = f.code;
      return;
    }
    impl_ = std::move(impl);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

LockWatch::LockWatch(const LockHandle& handle, std::chrono::milliseconds interval) {
  std::error_code ec;
  *this = LockWatch(handle, interval, ec);
  if (ec) throw Error(ec, "watch lock file", handle.path().string());
}

int LockWatch::native_handle() const noexcept { return impl_ ? impl_->epoll.get() : -1; }

bool LockWatch::check() { return impl_ && impl_->check(); }

bool LockWatch::wait_for_loss(std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller) {
  if (!impl_) return true;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (!impl_->check()) return true;
    std::optional<std::chrono::steady_clock::duration> left;
    if (timeout) {
      left = start + *timeout - std::chrono::steady_clock::now();
      if (*left <= std::chrono::steady_clock::duration::zero()) return false;
    }
    Wake w = sleep_until({impl_->epoll.get()}, canceller ? canceller->native_handle() : -1, left);
    if (w == Wake::kCancelled) return false;
    if (w == Wake::kError) throw Error(last_error(), "wait for loss of lock file", impl_->state->path().string());
  }
}

bool LockWatch::lost() const noexcept { return impl_ == nullptr || impl_->lost; }

std::string LockWatch::loss_reason() const {
  if (!impl_) return "the watch is empty";
  std::lock_guard<std::mutex> guard(impl_->mutex);
  return impl_->reason;
}

struct LossMonitor::Impl {
  LockWatch watch;
  Callback on_loss;
  UniqueFd stop;
  std::thread thread;

  void run() {
    for (;;) {
      if (!watch.check()) {
        on_loss(watch.loss_reason());
        return;
      }
      if (sleep_until({watch.native_handle()}, stop.get(), std::nullopt) == Wake::kCancelled) return;
    }
  }
};

LossMonitor::LossMonitor(const LockHandle& handle, Callback on_loss, std::chrono::milliseconds interval)
    : impl_(std::make_unique<Impl>()) {
  impl_->watch = LockWatch(handle, interval);
  impl_->on_loss = std::move(on_loss);
  impl_->stop.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl_->stop.valid()) throw Error(last_error(), "create loss monitor", handle.path().string());
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

LossMonitor::~LossMonitor() {
  std::uint64_t one = 1;
  ssize_t n = ::write(impl_->stop.get(), &one, sizeof one);
  (void)n;
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace pidlock
