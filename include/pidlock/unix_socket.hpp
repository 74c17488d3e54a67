/// \file
/// Locking a Unix-domain socket path, PostgreSQL's Lock_AF_UNIX pattern.
///
/// Thread safety: as LockManager.
#ifndef PIDLOCK_UNIX_SOCKET_HPP
#define PIDLOCK_UNIX_SOCKET_HPP

#include <pidlock/export.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/lock_manager.hpp>
#include <pidlock/options.hpp>

#include <pidlock/path.hpp>

#include <system_error>

namespace pidlock {

/// Acquires `<socket_path>.lock` (with the given options, so it may wait),
/// and only once that lock is ours removes a leftover socket file at
/// `socket_path`: a socket left there by a holder that died, which would make
/// bind() fail with EADDRINUSE. Only a socket is removed: anything else at
/// `socket_path` (a regular file, a directory, a symlink) makes the call fail
/// with errc::not_a_socket, and the lock is released again. Nothing is
/// created at `socket_path`: bind() your socket after this returns, and
/// remove it before releasing the lock at shutdown.
PIDLOCK_EXPORT LockHandle lock_unix_socket(LockManager& manager,
                                           const Path& socket_path,
                                           const AcquireOptions& options = {});
/// The same, reporting failures through `ec`; when ec == errc::held and
/// `holder` is not null, *holder receives the verdict.
PIDLOCK_EXPORT LockHandle lock_unix_socket(LockManager& manager,
                                           const Path& socket_path,
                                           const AcquireOptions& options, std::error_code& ec,
                                           Inspection* holder = nullptr) noexcept;

}  // namespace pidlock

#endif  // PIDLOCK_UNIX_SOCKET_HPP
