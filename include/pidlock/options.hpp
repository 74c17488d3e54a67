/// \file
/// Options of LockManager::acquire and LockManager::inspect.
///
/// Thread safety: plain value types.
#ifndef PIDLOCK_OPTIONS_HPP
#define PIDLOCK_OPTIONS_HPP

#include <pidlock/path.hpp>

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pidlock {

class Canceller;

/// What kill(pid, 0) == EPERM means for a foreign record (one whose file
/// carries no kernel-lock evidence). The process exists but belongs to
/// another user.
enum class PermissionDeniedPolicy {
  /// The process may be the holder: the lock is held. The safe default.
  kAssumeAlive,
  /// PostgreSQL's rule: a process of another user cannot be a competing
  /// server for a directory this user owns, so the lock is stale.
  kAssumeDead,
};

/// How to judge a lock file. Used by acquire() (before taking over) and by
/// inspect().
struct JudgeOptions {
  /// What EPERM from kill(pid, 0) means; see PermissionDeniedPolicy.
  PermissionDeniedPolicy permission_denied = PermissionDeniedPolicy::kAssumeAlive;
  /// Pids that cannot be a competitor, like PostgreSQL's postmaster pid of the
  /// previous boot being our own, our parent's or pg_ctl's (the
  /// "grandparent"). Our own pid and our parent's are always in this list.
  /// A record naming one of them counts as stale only when its identity
  /// (start time, boot id) shows another incarnation of that pid.
  std::vector<pid_t> own_pids;
};

/// Options of LockManager::acquire (and of guard_data_directory, lock_unix_socket).
struct AcquireOptions {
  /// How an existing file is judged before it may be taken over.
  JudgeOptions judge;

  /// Line 2 of the record. Empty: the canonical path of the lock file's
  /// folder.
  Path data_directory;

  /// The initial status word (at most kMaxStatusLength printable characters,
  /// no whitespace).
  std::string status = "starting";

  /// Bound on create attempts when the path keeps being re-created by others
  /// (PostgreSQL: 100, "seems like plenty").
  int max_attempts = 100;

  /// Permission bits of a new lock file, applied with fchmod so that the
  /// umask does not change them. 0640 with a `group` lets the group's
  /// users inspect the lock (`pidlock status`); 0660 lets them take it.
  mode_t mode = 0600;

  /// Group of a new lock file, set with fchown right after the file is
  /// created and locked, before its record is written.
  /// Empty: the group a new file gets (the folder's where it is set-group-ID,
  /// else our effective group). A process may only choose a group it is a
  /// member of (unless it is root): otherwise acquire() fails with EPERM
  /// ("set group of lock file") and leaves nothing behind. A stale file is
  /// rewritten in place only when it already has this group; otherwise it
  /// is replaced by a new one.
  std::optional<gid_t> group;

  /// fsync the record and its folder after creating a lock file, so that a
  /// holder's record survives a power loss. Removals are not synced: a lock
  /// file that reappears after a power loss names another boot and is judged
  /// stale. Off trades crash durability for speed.
  bool durable = true;

  /// When NOTIFY_SOCKET is set (a systemd service of Type=notify), tell the
  /// service manager about status updates: READY=1 for "ready", STOPPING=1
  /// for "stopping" and at release (see service_manager.hpp).
  bool notify_service_manager = true;

  /// Leave the lock descriptor open across exec (FD_CLOEXEC cleared), so that
  /// an exec'd program keeps the kernel lock. Off by default.
  bool inheritable = false;

  /// Waiting. By default acquire() fails at once when the lock is held. With
  /// `wait`, it blocks until the lock is ours; with a `timeout` (which implies
  /// waiting) it gives up after that long with errc::held and the holder's
  /// inspection. A waiter that may open the file for writing announces
  /// itself on it (a shared lock on its second byte) and queues for the
  /// holder's lock in the kernel (F_OFD_SETLKW): waiters get the lock in the
  /// order they queued, a release or the holder's death wakes only the
  /// first in line, and the holder hands the file over in place instead of
  /// removing it, so that the waiter acquires with took_over() false (see
  /// LockHandle::release()). Without `timeout` and `canceller` the calling
  /// thread blocks in that call, as flock(1) does, and does not notice the
  /// file losing its name until its holder lets go. With either, a thread
  /// of pidlock's own keeps the place in the queue while the calling thread
  /// sleeps in poll() on it, the canceller and inotify events of the file's
  /// name, and `recheck_interval` bounds each sleep as a safety net for file
  /// systems whose changes inotify cannot see (NFS). Any other waiter
  /// (no write permission, a foreign file) sleeps in poll() on inotify
  /// events of the lock file (closed by its holder, unlinked, replaced or
  /// renamed) and, for holders known only by pid, a pidfd, and looks again
  /// at each. No waiter uses CPU while it waits.
  bool wait = false;
  /// Give up waiting after this long (implies `wait`); see `wait`.
  std::optional<std::chrono::milliseconds> timeout;
  /// Cancels a waiting acquire from another thread (errc::cancelled). A
  /// lock granted at the moment of the cancel is returned, not dropped.
  const Canceller* canceller = nullptr;
  /// Longest single sleep of a waiting acquire; see `wait`.
  std::chrono::milliseconds recheck_interval{1000};
};

}  // namespace pidlock

#endif  // PIDLOCK_OPTIONS_HPP
