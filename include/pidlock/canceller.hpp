/// \file
/// Cancelling a waiting acquire from another thread.
///
/// A Canceller is a one-shot flag backed by a kernel event (an eventfd on
/// Linux), so that a waiter blocked in the kernel wakes at once when it is
/// cancelled. Pass a pointer in AcquireOptions::canceller (or to
/// LockManager::wait_until_free); cancel() makes every current and future
/// wait using it return errc::cancelled until reset().
///
/// Thread safety: all members are thread-safe. The Canceller must outlive
/// the waits that use it.
#ifndef PIDLOCK_CANCELLER_HPP
#define PIDLOCK_CANCELLER_HPP

#include <pidlock/export.hpp>

namespace pidlock {

/// A one-shot, re-armable cancellation flag for waits (see canceller.hpp).
class PIDLOCK_EXPORT Canceller {
 public:
  /// Creates the kernel event. Throws pidlock::Error if it cannot (EMFILE).
  Canceller();
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;

  /// Cancels the waits; async-signal-safe (one write()).
  void cancel() noexcept;
  /// True between cancel() and reset().
  bool cancelled() const noexcept;
  /// Re-arms the canceller for new waits.
  void reset() noexcept;

  /// A descriptor that is readable while cancelled, for poll()/epoll.
  int native_handle() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace pidlock

#endif  // PIDLOCK_CANCELLER_HPP
