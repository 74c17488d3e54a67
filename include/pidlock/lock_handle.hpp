/// \file
/// A held lock.
///
/// A LockHandle is obtained from LockManager::acquire. It owns the lock file's
/// descriptor and the kernel lock (an open-file-description lock) on it. The
/// lock is held until release() or destruction; while it is held no other
/// pidlock user can take the same lock, on this machine or on another machine
/// that shares the file system with working locks.
///
/// Move-only. Moving leaves the source empty. The destructor calls release()
/// and ignores its error; call release() yourself to see it.
///
/// Ownership follows the processes. A forked child inherits the descriptor,
/// and with it the kernel lock, until it exits or execs (the descriptor is
/// close-on-exec unless AcquireOptions::inheritable); an exec'd program
/// keeps an inheritable one. The lock lives as long as any process holds
/// it: release() in the acquiring process removes the file only if no other
/// process still shares the lock, and otherwise leaves it, held, to them.
/// A child never removes its parent's lock file: release() and the
/// destructor in a process other than the one that acquired the lock only
/// close the descriptor -- unless that process took the lock over with
/// claim(), the daemonize flow:
/// \code
///   pidlock::LockHandle lock = locks.acquire(pid_file);  // conflicts reported here
///   if (daemon(0, 0) != 0) ...;   // or fork(), the parent returning from main
///   lock.claim();                 // in the child: the record names it now
///   ...                           // its clean shutdown removes the file
/// \endcode
///
/// Thread safety: every member function but the move operations may be
/// called from any thread at the same time; the calls on one handle are
/// serialised internally. Moving a handle (or assigning to it) while another
/// thread uses it is, as for any object, a data race.
#ifndef PIDLOCK_LOCK_HANDLE_HPP
#define PIDLOCK_LOCK_HANDLE_HPP

#include <pidlock/export.hpp>
#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>

#include <pidlock/path.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

namespace pidlock {

namespace detail {
class HeldLock;
struct HandleAccess;
}  // namespace detail

/// A held lock: owns the lock file's descriptor and kernel lock (see lock_handle.hpp).
class [[nodiscard]] PIDLOCK_EXPORT LockHandle {
 public:
  /// An empty handle.
  LockHandle() noexcept;
  ~LockHandle();
  /// Takes over `other`'s lock; `other` is left empty.
  LockHandle(LockHandle&& other) noexcept;
  /// Releases *this first, then takes over `other`'s lock.
  LockHandle& operator=(LockHandle&& other) noexcept;
  LockHandle(const LockHandle&) = delete;
  LockHandle& operator=(const LockHandle&) = delete;

  /// True while the handle holds a lock.
  bool held() const noexcept;
  /// held().
  explicit operator bool() const noexcept { return held(); }

  /// The lock's path (for a lock file: its canonical folder and its name).
  /// Empty for an empty or released handle.
  const Path& path() const noexcept;

  /// A copy of the record this holder wrote (after any update_status()).
  /// Throws Error (errc::not_held) for an empty or released handle.
  HolderRecord record() const;

  /// True if acquiring took over a stale lock: the previous holder did not
  /// release it (it crashed, was killed, or lost power). A database uses this
  /// to run crash recovery at start-up.
  bool took_over() const noexcept;

  /// The previous holder's inspection (its record and why it was judged
  /// stale) when took_over() is true.
  const std::optional<Inspection>& previous_holder() const noexcept;

  /// For a lock in a lease-based store (etcd): a number that grows with each
  /// new holder of the lock, to pass to the storage you write to so that it
  /// can reject a former holder that woke up late. Empty for lock files.
  std::optional<std::uint64_t> fencing_token() const noexcept;

  /// For a lock in a lease-based store (etcd): the earliest moment, on
  /// this process's steady clock, at which the store could end the lease
  /// and let another holder in, as of the last renewal that succeeded. It
  /// moves on with every renewal. After a loss it is how long whatever the
  /// lock protects may still run without overlapping the next holder
  /// (`pidlock run` stops its job before it). Empty for lock files.
  std::optional<std::chrono::steady_clock::time_point> safe_until() const noexcept;

  /// The lock file's descriptor (-1 for an empty handle). Owned by the
  /// handle; do not close it.
  int native_handle() const noexcept;

  /// Rewrites the status word in place: one pwrite at offset 0 of the whole
  /// record, never a truncate, on the same file and descriptor, so the kernel
  /// lock is untouched. A reader that reads while the write is in progress
  /// sees a checksum mismatch and reads again; it never accepts a torn
  /// record. Fails with errc::invalid_argument for a malformed status word,
  /// errc::lock_lost if the path no longer names this file (nothing is
  /// written then), or a system error (the record may then be partly
  /// rewritten; readers see a torn record and judge by the kernel lock).
  /// Under systemd (NOTIFY_SOCKET set), also sends READY=1 for "ready",
  /// STOPPING=1 for "stopping" and STATUS=<word> (service_manager.hpp).
  void update_status(std::string_view status);
  /// The same, reporting failures through `ec` instead of throwing.
  void update_status(std::string_view status, std::error_code& ec) noexcept;

  /// Writes (or replaces) line `line` of the record, one of the
  /// application's own lines 4 to 3 + kMaxApplicationLines that come before
  /// pidlock's fields (see holder_record.hpp), so that a program keeps its
  /// file's layout; PostgreSQL's AddToDataDirLockFile writes its port,
  /// socket directory, listen address, shared-memory key and status this
  /// way. Missing lines before it are written empty, as PostgreSQL does.
  /// `text` is kept verbatim (trailing spaces too); a line number out of
  /// range or a text set_application_line() refuses (a newline or NUL,
  /// longer than kMaxApplicationLineLength, starting like one of pidlock's
  /// own lines) fails with errc::invalid_argument and writes nothing.
  /// Same guarantees as update_status.
  void set_line(std::size_t line, std::string_view text);
  /// The same, reporting failures through `ec` instead of throwing.
  void set_line(std::size_t line, std::string_view text, std::error_code& ec) noexcept;

  /// Makes `pid` the recorded holder (line 1 and its identity fields), for a
  /// process that keeps the lock through an inherited descriptor, like a
  /// supervisor's child. The kernel lock does not move: it is held as long as
  /// any process has the descriptor open. Same guarantees as update_status.
  void update_holder_pid(pid_t pid);
  /// The same, reporting failures through `ec` instead of throwing.
  void update_holder_pid(pid_t pid, std::error_code& ec) noexcept;

  /// In a process that inherited this handle through fork() (the child of
  /// a daemonizing server): makes this process the lock's holder. The
  /// record is rewritten in place to name it (pid, start time, identity),
  /// and from now on its release() removes the file, as the acquiring
  /// process's would have. Nothing to do in the process that holds the lock
  /// already. The parent may exit, or release its handle, before or after
  /// the claim: while the child lives the lock stays held, and the parent
  /// removes nothing. Fails with errc::lock_lost if the path no longer names
  /// the file, errc::invalid_argument for a lock that cannot pass to a
  /// child (etcd), or a system error.
  void claim();
  /// The same, reporting failures through `ec` instead of throwing.
  void claim(std::error_code& ec) noexcept;

  /// Answers whether the path still names this handle's file and its first
  /// line still names the recorded pid. PostgreSQL makes this check every
  /// minute and shuts down when it fails. Returns false with ec cleared when
  /// the lock was lost (deleted, renamed, replaced, rewritten); false with ec
  /// set on an I/O error. Does not wait.
  bool recheck(std::error_code& ec) const noexcept;
  /// Throwing form: returns false when lost, throws Error on I/O error.
  bool recheck() const;

  /// Sets the file's access and modification times to now, so that /tmp
  /// cleaners (systemd-tmpfiles, tmpreaper) leave it alone; PostgreSQL
  /// touches its socket lock files every 58 minutes. Uses the descriptor,
  /// so it never touches another file.
  void touch();
  /// The same, reporting failures through `ec` instead of throwing.
  void touch(std::error_code& ec) noexcept;

  /// Releases the lock: if the path still names this handle's file and the
  /// file still holds this handle's record (the same holder: pid and start
  /// time), removes it (without an fsync of the folder: a file that
  /// reappears after a power loss names another boot and is judged stale)
  /// and only then closes the descriptor, which drops the kernel lock. If
  /// the file was deleted, renamed or replaced, or its record rewritten by
  /// someone else, nothing is removed and errc::lock_lost is returned.
  /// If another process may share the lock (an inheritable lock passed to a
  /// program, or one held across a fork), the descriptor is closed first and
  /// the file removed only if the lock can then be taken again, that is, if
  /// no other process still holds it; otherwise it stays, held by them.
  /// If a waiting acquire has announced itself on the file (see
  /// AcquireOptions::wait), the file is not removed but handed over: its
  /// record is rewritten with the status kReleasedStatus and the kernel lock
  /// dropped, and the first waiter to lock it takes it over in place. In a
  /// forked child only the descriptor is closed. The handle is empty
  /// afterwards in every case. Returns the first error met.
  std::error_code release() noexcept;

 private:
  friend struct detail::HandleAccess;
  explicit LockHandle(std::shared_ptr<detail::HeldLock> state) noexcept;
  std::shared_ptr<detail::HeldLock> state_;
};

}  // namespace pidlock

#endif  // PIDLOCK_LOCK_HANDLE_HPP
