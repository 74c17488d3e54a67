/// \file
/// Verdicts on a lock file, with the evidence behind them (guarantee G4).
///
/// Thread safety: plain value types.
#ifndef PIDLOCK_INSPECTION_HPP
#define PIDLOCK_INSPECTION_HPP

#include <pidlock/export.hpp>
#include <pidlock/holder_record.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace pidlock {

/// What an inspection concluded about a lock file.
enum class Verdict {
  kFree,     ///< no lock file at the path
  kHeld,     ///< a live holder owns the lock
  kStale,    ///< the file is there but its holder is gone: it may be taken over
  kUnknown,  ///< the evidence cannot decide; counts as held, never taken over
};

/// Why the verdict was reached. Each value names one piece of evidence.
enum class Reason {
  kNoLockFile,            ///< free: nothing at the path
  kHeldByThisProcess,     ///< held: this process holds it (same inode)
  kKernelLockHeld,        ///< held: a process holds the file's kernel lock
  kKernelLockFree,        ///< stale: pidlock record, nobody holds its lock
  kEmptyFile,             ///< stale: empty file (or NUL bytes only), nobody
                          ///<   holds its kernel lock, and no sign of life;
                          ///<   unknown while an empty file is young (a
                          ///<   creator between its open and its lock)
  kUnparsable,            ///< stale: a damaged pidlock record (torn or
                          ///<   truncated), nobody holds its kernel lock
  kPidAlive,              ///< held: foreign record, the pid is alive and is
                          ///<   the process that wrote it
  kPidAliveOtherUser,     ///< held: kill() says EPERM (policy: assume alive)
  kPidDead,               ///< stale: kill() says ESRCH
  kPidDeadOtherUser,      ///< stale: EPERM, and the caller's policy says dead
  kZombie,                ///< stale: the pid is a zombie (dead, unreaped)
  kPidReused,             ///< stale: that pid now names a process that started
                          ///<   after the lock was written
  kPidImpossible,         ///< stale: the pid cannot be a holder here: 0, above
                          ///<   pid_max, or pid 1 of the initial pid
                          ///<   namespace (the machine's init)
  kOwnIncarnation,        ///< stale: own/parent/listed pid, other incarnation
  kOwnProcessUnproven,    ///< unknown: own/parent/listed pid, identity unknown
  kOtherBoot,             ///< stale: written during another boot
  kOtherHost,             ///< unknown: written on another host (a host line,
                          ///<   or a pid file's line 2 that names neither
                          ///<   this host nor the program the pid runs)
  kOtherPidNamespace,     ///< unknown: pid from another pid namespace and no
                          ///<   kernel lock evidence
  kProbeFailed,           ///< unknown: liveness could not be determined (a
                          ///<   kill() error, or a sign of life that could
                          ///<   not be read: shared memory, a socket)
  kUnreadable,            ///< unknown: an empty file or a damaged pidlock
                          ///<   record, and no kernel-lock evidence
  kReleased,              ///< stale: its holder released it for a waiter
                          ///<   (status kReleasedStatus) and nobody holds
                          ///<   its kernel lock: taken over in place, with
                          ///<   no recovery due
  kNotALockRecord,        ///< unknown: the file is not a lock record of any
                          ///<   layout pidlock recognises (text, binary,
                          ///<   huge, ...); never changed or removed
  kFlockHeld,             ///< held: a process holds a flock() lock on the
                          ///<   file (util-linux flock, Python filelock)
  kLockFileOpen,          ///< held: a live process has the lock file open
                          ///<   (a sign of life when pid evidence says gone)
  kDataDirectoryInUse,    ///< held: a live process works in the record's
                          ///<   data directory (PostgreSQL: its server or a
                          ///<   backend, perhaps in another pid namespace)
  kSharedMemoryAttached,  ///< held: PostgreSQL's shared memory (line 7) still
                          ///<   has attached processes
  kSocketListening,       ///< held: a server accepts connections on the
                          ///<   record's Unix socket (PostgreSQL)
  kLeaseAlive,            ///< held: a lease-based store's holder that keeps
                          ///<   no pidlock record (etcd's lock recipe, such
                          ///<   as `etcdctl lock`); its live lease is the
                          ///<   evidence
};

/// For locks in a lease-based store (etcd): the lease behind the holder.
struct LeaseInfo {
  std::int64_t lease_id = 0;           ///< the store's lease id
  std::int64_t ttl_seconds = 0;        ///< time left on the lease
  std::uint64_t fencing_token = 0;     ///< grows with each new holder
};

/// A verdict on a lock file, with the evidence behind it.
struct Inspection {
  Verdict verdict = Verdict::kFree;     ///< free, held, stale or unknown
  Reason reason = Reason::kNoLockFile;  ///< the evidence that decided it
  /// One sentence for a person, e.g. "pid 4242 is a zombie (exited, not yet
  /// reaped by its parent 17)".
  std::string detail;
  /// The parsed record, when the file held one.
  std::optional<HolderRecord> holder;
  /// Whether the verdict rests on the file's kernel lock (held, a flock
  /// held, or free on a pidlock, empty or damaged file). False when the pid
  /// rules or other signs of life decided: foreign files (PostgreSQL's),
  /// file systems without locks, and records of another kernel.
  bool kernel_lock_evidence = false;
  /// Set for locks in a lease-based store.
  std::optional<LeaseInfo> lease;
};

PIDLOCK_EXPORT const char* to_string(Verdict verdict) noexcept;  ///< "held", ...
PIDLOCK_EXPORT const char* to_string(Reason reason) noexcept;    ///< "zombie", ...

}  // namespace pidlock

#endif  // PIDLOCK_INSPECTION_HPP
