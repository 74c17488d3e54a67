// The state behind a LockHandle, and the operations on a lock file that
// acquire, inspect, break and release share.
#ifndef PIDLOCK_HELD_LOCK_HPP
#define PIDLOCK_HELD_LOCK_HPP

#include <pidlock/error.hpp>
#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/options.hpp>

#include "judge.hpp"
#include "remote_lock.hpp"
#include "posix/syscalls.hpp"

#include <boost/filesystem/path.hpp>

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace pidlock::detail {

struct HeldLock {
  std::mutex mutex;
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  boost::filesystem::path path;  // absolute
  HolderRecord record;
  bool took_over = false;
  std::optional<Inspection> previous;
  pid_t owner_pid = 0;  // the process that acquired; others never unlink
  bool durable = true;
  // Could another process have the lock's open file description (an
  // inheritable lock, or a fork since the acquire)? Then closing ours does
  // not tell the waiters that the lock is free (see hand_over).
  bool inheritable = false;
  std::uint64_t forks_at_acquire = 0;
  std::atomic<bool> active{true};  // false once released
  // Set for a lock in a remote store; then fd, dev and ino are unused.
  std::unique_ptr<RemoteLock> remote;
};

// Is the status word acceptable? Printable ASCII, no spaces, bounded, and
// not the reserved kReleasedStatus.
bool valid_status(std::string_view status) noexcept;

// Releases `state` (see LockHandle::release); idempotent.
std::error_code release_state(HeldLock& state) noexcept;
// Is `state`'s file still ours (same inode at the path, same pid on line
// 1)? On "no", *why says what happened; on an I/O error *ec is set.
bool recheck_state(HeldLock& state, std::string* why, std::error_code* ec) noexcept;
// Sets the file's times to now through its descriptor.
std::error_code touch_state(HeldLock& state) noexcept;

// Builds handles from state (LockHandle's constructor is private).
struct HandleAccess {
  static LockHandle make(std::shared_ptr<HeldLock> state) noexcept { return LockHandle(std::move(state)); }
  static const std::shared_ptr<HeldLock>& state(const LockHandle& h) noexcept { return h.state_; }
};

// A failed operation, with what a person needs to act on it.
struct Failure {
  std::error_code code;
  std::string operation;
  std::string detail;
  explicit operator bool() const noexcept { return static_cast<bool>(code); }
};

inline Failure system_failure(std::string operation, std::string detail = {}) {
  return Failure{last_error(), std::move(operation), std::move(detail)};
}
inline Failure pidlock_failure(errc code, std::string operation, std::string detail = {}) {
  return Failure{make_error_code(code), std::move(operation), std::move(detail)};
}

// Logs the failure at error level and throws it as pidlock::Error.
[[noreturn]] void throw_failure(const Failure& failure, const std::string& path);
void log_failure(const Failure& failure, const std::string& path);

// A lock path split into its folder (opened) and its last component.
struct LockLocation {
  std::string path;  // as given, for messages
  std::string name;  // last component
  UniqueFd dir;      // the folder, O_DIRECTORY
};
Failure open_location(const boost::filesystem::path& path, LockLocation* out);

// The file found at a lock path.
struct ExistingFile {
  bool vanished = false;  // nothing there (ENOENT at some point): retry/free
  UniqueFd fd;
  struct stat st {};
  bool writable = false;
};
// Opens what is at `loc` read-only, without following a symlink, without
// blocking on a FIFO and without opening devices; refuses anything but a
// regular file.
Failure open_existing(const LockLocation& loc, ExistingFile* out);

// Reads and parses the record behind `fd`, reading again (briefly) while
// the checksum shows a rewrite in progress.
Failure read_record(int fd, const std::string& path, ParsedRecord* out);

// Does `loc` still name the inode `st` describes? *same is false when the
// name is gone or names another file. Any other failure to look (EIO,
// EACCES, ...) is reported, never mistaken for a change.
Failure names_same_file(const LockLocation& loc, const struct stat& st, bool* same);

// Removes `loc` if it still names `st`'s inode. The caller holds the
// inode's kernel lock (or the file system has none), so no other pidlock
// user can remove or replace it meanwhile.
Failure remove_if_same(const LockLocation& loc, const struct stat& st, bool* removed);

}  // namespace pidlock::detail

#endif  // PIDLOCK_HELD_LOCK_HPP
