/// \file
/// Noticing that a held lock was lost.
///
/// A lock is lost when its file is deleted, renamed, replaced by another
/// file, or its first line is overwritten with another pid. PostgreSQL
/// rechecks postmaster.pid once a minute and so notices within one to two
/// minutes; pidlock asks the kernel (inotify on the file and its folder) and
/// notices within milliseconds, with a periodic recheck as a safety net for
/// file systems whose changes the kernel cannot report (NFS).
///
/// Three forms, for three kinds of program:
///  * LockWatch::native_handle() for an event loop: add it to poll/epoll,
///    call check() when it is readable;
///  * LockWatch::wait_for_loss() for a thread that blocks until loss;
///  * LossMonitor for a callback from a background thread.
///
/// Thread safety: every LockWatch member function but the move operations
/// may be called from any thread at the same time (check() calls are
/// serialised internally). LossMonitor's constructor and destructor may run
/// on any thread; its callback runs on the monitor's own thread.
#ifndef PIDLOCK_LOCK_WATCH_HPP
#define PIDLOCK_LOCK_WATCH_HPP

#include <pidlock/export.hpp>
#include <pidlock/lock_handle.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace pidlock {

class Canceller;

/// PostgreSQL's recheck interval, the default safety net.
inline constexpr std::chrono::milliseconds kDefaultRecheckInterval{60000};

/// Watches a held lock for loss, for an event loop or a blocking thread.
class PIDLOCK_EXPORT LockWatch {
 public:
  /// An empty watch, to be move-assigned.
  LockWatch() noexcept;
  /// Starts watching the file `handle` holds. The watch shares the handle's
  /// state: it stays valid if the handle is moved, and reports the lock lost
  /// once the handle is released. Creates one inotify instance, one timer and
  /// one epoll descriptor (all close-on-exec). Throws pidlock::Error when
  /// they cannot be created (EMFILE, ...) or the handle is empty.
  explicit LockWatch(const LockHandle& handle,
                     std::chrono::milliseconds recheck_interval = kDefaultRecheckInterval);
  /// The same, reporting failures through `ec` instead of throwing.
  LockWatch(const LockHandle& handle, std::chrono::milliseconds recheck_interval,
            std::error_code& ec) noexcept;
  ~LockWatch();
  /// Moves the watch; the source is left empty.
  LockWatch(LockWatch&&) noexcept;
  /// Moves the watch; the source is left empty.
  LockWatch& operator=(LockWatch&&) noexcept;

  /// Readable (POLLIN) when something happened to the file or its folder, or
  /// the recheck interval elapsed. Then call check().
  int native_handle() const noexcept;

  /// Consumes pending notifications and, if there were any (or the interval
  /// elapsed), rechecks the lock. Returns true while the lock is still ours;
  /// false once it is lost (and from then on). Does not wait.
  bool check();

  /// Blocks until the lock is lost (returns true), `timeout` passes or
  /// `canceller` fires (returns false). No timeout: waits indefinitely.
  bool wait_for_loss(std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                     const Canceller* canceller = nullptr);

  /// True once check() or wait_for_loss() has found the lock lost.
  bool lost() const noexcept;
  /// Why the lock was lost ("the lock file was deleted or renamed", ...);
  /// empty while it is not.
  std::string loss_reason() const;


 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Calls `on_loss` once, from a background thread, when the lock is lost.
/// The destructor stops the thread; after it returns the callback is not
/// running and will not run. The callback must not destroy the monitor.
class PIDLOCK_EXPORT LossMonitor {
 public:
  /// Receives loss_reason() of the underlying watch.
  using Callback = std::function<void(const std::string& reason)>;
  /// Throws pidlock::Error if the watch cannot be created.
  LossMonitor(const LockHandle& handle, Callback on_loss,
              std::chrono::milliseconds recheck_interval = kDefaultRecheckInterval);
  ~LossMonitor();
  LossMonitor(const LossMonitor&) = delete;
  LossMonitor& operator=(const LossMonitor&) = delete;


 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pidlock

#endif  // PIDLOCK_LOCK_WATCH_HPP
