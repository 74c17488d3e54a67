#include <pidlock/unix_socket.hpp>

#include "core/failure.hpp"
#include "core/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>

namespace pidlock {

using namespace detail;

namespace {

// With the socket's lock held, nobody else may be serving on it: a socket
// file at the path is a leftover of a dead holder. Anything else there is
// not ours to remove.
Failure remove_stale_socket(const boost::filesystem::path& socket_path) {
  struct stat st {};
  if (sys().fstatat(AT_FDCWD, socket_path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return system_failure("stat socket file");
  }
  if (!S_ISSOCK(st.st_mode))
    return pidlock_failure(errc::not_a_socket, "remove stale socket file",
                           "the lock is ours, but the path is not a socket; nothing was removed");
  if (sys().unlinkat(AT_FDCWD, socket_path.c_str(), 0) != 0 && errno != ENOENT)
    return system_failure("remove stale socket file");
  PIDLOCK_LOG(info) << "removed stale socket file \"" << socket_path.string() << "\"";
  return {};
}

}  // namespace

LockHandle lock_unix_socket(LockManager& manager, const Path& socket_path,
                            const AcquireOptions& options, std::error_code& ec, Inspection* holder) noexcept {
  try {
    boost::filesystem::path lock_path = socket_path;
    lock_path += ".lock";
    LockHandle handle = manager.acquire(lock_path, options, ec, holder);
    if (ec) return {};
    if (Failure f = remove_stale_socket(socket_path)) {
      log_failure(f, socket_path.string());
      ec = f.code;
      (void)handle.release();
      return {};
    }
    return handle;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return {};
}

LockHandle lock_unix_socket(LockManager& manager, const Path& socket_path,
                            const AcquireOptions& options) {
  boost::filesystem::path lock_path = socket_path;
  lock_path += ".lock";
  LockHandle handle = manager.acquire(lock_path, options);
  if (Failure f = remove_stale_socket(socket_path)) {
    log_failure(f, socket_path.string());
    (void)handle.release();
    throw_failure(f, socket_path.string());
  }
  return handle;
}

}  // namespace pidlock
