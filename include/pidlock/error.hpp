/// \file
/// Errors reported by pidlock.
///
/// Every failing call reports a std::error_code. System failures use
/// std::system_category() with the errno value; pidlock's own conditions use
/// pidlock::error_category() with the values of pidlock::errc. The throwing
/// calls throw pidlock::Error (a std::system_error) whose what() names the
/// operation, the path and the reason, e.g.
/// \verbatim
///   open lock file "/srv/db/postmaster.pid": Permission denied
/// \endverbatim
///
/// "The lock is held by someone else" is a normal outcome, not an I/O error: it
/// is errc::held, and the throwing calls throw the distinct LockHeldError that
/// carries the Inspection of the holder.
///
/// Thread safety: all functions here are thread-safe; the exception types are
/// ordinary value types.
#ifndef PIDLOCK_ERROR_HPP
#define PIDLOCK_ERROR_HPP

#include <pidlock/export.hpp>
#include <pidlock/inspection.hpp>

#include <string>
#include <system_error>

namespace pidlock {

/// pidlock's own error conditions (values of pidlock::error_category()).
enum class errc {
  /// The lock is held by another live holder, or its state is unknown (which
  /// counts as held). The Inspection says who and why.
  held = 1,
  /// This process already holds a lock on this file (same device and inode).
  /// A second acquire never breaks or drops the first.
  already_held_by_this_process,
  /// Something other than a regular file is at the lock path: a directory,
  /// FIFO, socket or device. Nothing was opened for writing or removed.
  not_a_regular_file,
  /// The lock path is a symbolic link. Symbolic links are never followed.
  symlink_at_lock_path,
  /// The file at the lock path has more than one hard link, so it is not a
  /// lock file of ours; it is neither judged stale nor removed.
  hard_linked_lock_file,
  /// The stale lock kept reappearing: max_attempts creations lost a race.
  too_many_attempts,
  /// The lock file is no longer the file this handle locked (deleted,
  /// renamed or replaced by someone else). Nothing was removed.
  lock_lost,
  /// The handle is empty (moved from or already released).
  not_held,
  /// An argument is malformed (e.g. a status word with whitespace).
  invalid_argument,
  /// The data directory fails the safety checks (missing, not a directory,
  /// wrong owner, group/other access).
  unsafe_data_directory,
  /// The operation was cancelled through a Canceller.
  cancelled,
  /// Something other than a socket is at a socket path (lock_unix_socket).
  not_a_socket,
  /// The lock's address or store is misconfigured: a malformed etcd://
  /// address, unreadable TLS files, an endpoint that does not answer as an
  /// etcd v3 client URL (a wrong port, another HTTP server), members of
  /// different clusters, refused credentials. Never a verdict on the lock.
  misconfigured,
};

/// The category of pidlock::errc values; its message() describes each one.
PIDLOCK_EXPORT const std::error_category& error_category() noexcept;

/// Makes `e` a std::error_code of error_category(), so that `ec == errc::held` works.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// The exception thrown by every throwing call of pidlock.
class PIDLOCK_EXPORT Error : public std::system_error {
 public:
  /// `operation` is a short verb phrase ("open lock file"), `path` the file
  /// concerned (may be empty), `detail` an optional extra sentence.
  Error(std::error_code code, std::string operation, std::string path,
        const std::string& detail = {});

  /// The operation that failed, as given to the constructor.
  const std::string& operation() const noexcept { return operation_; }
  /// The file concerned; may be empty.
  const std::string& path() const noexcept { return path_; }
  /// `<operation> "<path>": <reason> (<detail>)`, as describe_error() formats it.
  const char* what() const noexcept override { return message_.c_str(); }

 protected:
  /// Replaces the text what() returns (LockHeldError's own message).
  void set_message(std::string message) { message_ = std::move(message); }

 private:
  std::string message_;
  std::string operation_;
  std::string path_;
};

/// Thrown by LockManager::acquire when the lock is held (or its state is
/// unknown). what() is a PostgreSQL-style message with a hint and the
/// evidence:
/// \verbatim
///   lock file "/srv/db/pidlock.pid" already exists: is another instance
///   (PID 4242, started 2026-11-27 04:15:00 UTC, host db1, status ready)
///   using data directory "/srv/db"? [held: a process holds the kernel lock
///   on the file]
/// \endverbatim
class PIDLOCK_EXPORT LockHeldError : public Error {
 public:
  /// The message is made from `path` and the holder's inspection.
  LockHeldError(const std::string& path, Inspection holder);
  /// The verdict on the lock: who holds it, and the evidence.
  const Inspection& holder() const noexcept { return holder_; }

 private:
  Inspection holder_;
};

/// Formats `<operation> "<path>": <reason> (<detail>)` as Error::what() does.
PIDLOCK_EXPORT std::string describe_error(const std::error_code& code,
                                          const std::string& operation,
                                          const std::string& path,
                                          const std::string& detail = {});

}  // namespace pidlock

namespace std {
template <>
struct is_error_code_enum<pidlock::errc> : true_type {};
}  // namespace std

#endif  // PIDLOCK_ERROR_HPP
