/// \file
/// LockManager: acquires lock files and judges them.
///
/// Modelled on PostgreSQL's CreateLockFile, made exact:
///
///  * The file is created at the lock's name with O_CREAT|O_EXCL (at most one
///    creator wins), kernel-locked, checked to still have that name, and
///    written with the complete record in one pwrite. Readers follow the
///    creation rule: a locked file is held whatever it holds (a record being
///    written), and an empty unlocked file younger than 2 s is a lock "in
///    creation" (unknown; an acquire looks again a few times, then takes it
///    over) -- so a crash at any step leaves nothing that needs a person.
///  * On EEXIST the existing file is opened (never through a symlink; never
///    blocking on a FIFO) and its kernel lock is tried. Taking it proves that
///    no pidlock holder is alive; failing proves one is.
///  * Files without kernel-lock evidence (PostgreSQL's, or on a file system
///    without locks) are judged by pid evidence: kill(pid, 0), zombies, pid
///    reuse (the process started after the record), boot id, host and pid
///    namespace.
///  * A stale file is taken over only by the contender that holds its
///    kernel lock and has checked that the path still names that inode: it
///    rewrites the file in place with its own record and keeps the lock, so
///    the path never goes empty, two contenders breaking one stale lock can
///    never both win, and the winner always learns took_over(). (Where the
///    file cannot be made ours, e.g. another owner's file we may not chmod,
///    it is removed under the same rule and creation starts again.)
///
/// Thread safety: a LockManager may be used from several threads at once.
/// Locks are per process: a table keyed by device and inode, shared by all
/// LockManagers of the process, refuses a second acquire of a file this
/// process already holds.
#ifndef PIDLOCK_LOCK_MANAGER_HPP
#define PIDLOCK_LOCK_MANAGER_HPP

#include <pidlock/canceller.hpp>
#include <pidlock/error.hpp>
#include <pidlock/export.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/options.hpp>

#include <pidlock/path.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <system_error>

namespace pidlock {

/// What LockManager::break_stale did.
struct BreakResult {
  bool removed = false;    ///< a stale lock file was removed
  Inspection inspection;   ///< the verdict the decision was based on
};

/// Acquires, inspects and breaks lock files (see lock_manager.hpp for how).
class PIDLOCK_EXPORT LockManager {
 public:
  LockManager();
  /// Releases, in reverse order of acquisition, every lock acquired through
  /// this manager whose handle still holds it (see release_all()).
  ~LockManager();
  LockManager(const LockManager&) = delete;
  LockManager& operator=(const LockManager&) = delete;

  /// Acquires the lock file at `path`, creating it. Unless options.wait or
  /// options.timeout is set, does not wait: if a live holder owns the lock,
  /// or the evidence cannot decide, fails at once. A waiting acquire sleeps
  /// until the kernel reports the holder's release or death (see
  /// AcquireOptions); on timeout it fails with errc::held and the holder's
  /// verdict, on cancellation with errc::cancelled. Waiters that find the
  /// file removed and re-created follow the new file.
  ///
  /// On success the file at `path` holds this process's record (see
  /// holder_record.hpp) and stays kernel-locked until the handle is
  /// released. If a stale lock was there, it was removed and took_over()
  /// says so. Creates only `path`; the folder must exist.
  ///
  /// Fails with:
  ///  * LockHeldError (errc::held): held or unknown; holder() has the verdict.
  ///  * errc::already_held_by_this_process: this process holds it already.
  ///  * errc::symlink_at_lock_path, errc::not_a_regular_file,
  ///    errc::hard_linked_lock_file: the path is not a lock file of ours.
  ///  * errc::too_many_attempts: lost the creation race max_attempts times.
  ///  * a system error (EACCES, ENOSPC, EROFS, ...), naming the operation.
  /// After a failure no lock is held and nothing was left behind.
  LockHandle acquire(const Path& path,
                     const AcquireOptions& options = {});
  /// The same, reporting failures through `ec`; when ec == errc::held and
  /// `holder` is not null, *holder receives the verdict.
  LockHandle acquire(const Path& path,
                     const AcquireOptions& options, std::error_code& ec,
                     Inspection* holder = nullptr) noexcept;

  /// Judges the lock file at `path` without taking anything: the kernel lock
  /// is queried (F_OFD_GETLK), never taken, so an inspection never makes a
  /// concurrent acquire fail. Does not wait. Errors: the path problems listed
  /// for acquire() and system errors.
  Inspection inspect(const Path& path,
                     const JudgeOptions& options = {}) const;
  /// The same, reporting failures through `ec` instead of throwing.
  Inspection inspect(const Path& path,
                     const JudgeOptions& options,
                     std::error_code& ec) const noexcept;

  /// Blocks until the lock at `path` is free or stale (without taking it),
  /// the timeout passes or the canceller fires. Returns the verdict that
  /// ended the wait: kFree or kStale when it became available; otherwise the
  /// last held/unknown verdict, with `ec` set to errc::held (timeout) or
  /// errc::cancelled. Woken by the kernel like a waiting acquire.
  Inspection wait_until_free(const Path& path,
                             std::optional<std::chrono::milliseconds> timeout,
                             const Canceller* canceller, const JudgeOptions& options,
                             std::error_code& ec) noexcept;

  /// Releases every lock acquired through this manager and still held, in
  /// reverse order of acquisition (as PostgreSQL unlinks its lock files at
  /// exit), leaving their handles empty. Returns the first error met.
  std::error_code release_all() noexcept;

  /// Refreshes the timestamps of every lock file this manager holds (see
  /// LockHandle::touch). Returns the first error met.
  std::error_code touch_all() noexcept;

  /// The number of locks acquired through this manager and still held.
  std::size_t held_count() const noexcept;

  /// Removes the lock file at `path` if, and only if, it is stale, with the
  /// same race-free rule as a take-over (kernel lock held by us, same inode).
  /// A free path is not an error (removed == false, verdict kFree). Held and
  /// unknown locks are left alone (removed == false). Does not wait.
  BreakResult break_stale(const Path& path,
                          const JudgeOptions& options = {});
  /// The same, reporting failures through `ec` instead of throwing.
  BreakResult break_stale(const Path& path,
                          const JudgeOptions& options,
                          std::error_code& ec) noexcept;


 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pidlock

#endif  // PIDLOCK_LOCK_MANAGER_HPP
