/// \file
/// Telling systemd (or any service manager that speaks sd_notify) how the
/// service is doing, without libsystemd.
///
/// When the environment variable NOTIFY_SOCKET is set (systemd sets it for
/// a service with Type=notify), pidlock speaks the sd_notify protocol: one
/// datagram of "KEY=VALUE" lines to that Unix socket, a path or, with a
/// leading '@', an abstract name. LockHandle::update_status() sends it by
/// itself, unless AcquireOptions::notify_service_manager is false:
/// \verbatim
///   update_status("ready"), ("standby")  ->  READY=1    STATUS=<word>
///   update_status("stopping")            ->  STOPPING=1 STATUS=stopping
///   update_status(any other word)        ->  STATUS=<word>
///   release, after READY=1 was sent      ->  STOPPING=1
/// \endverbatim
/// so that `systemctl start` returns once the daemon said "ready", and
/// `systemctl status` shows the status word. Only the process that holds the
/// lock sends the release's STOPPING=1 (a forked child's release does not).
/// A failed notification is logged as a warning and never fails the lock
/// operation: the lock file is what the lock is.
///
/// Thread safety: notify_service_manager() is thread-safe.
#ifndef PIDLOCK_SERVICE_MANAGER_HPP
#define PIDLOCK_SERVICE_MANAGER_HPP

#include <pidlock/export.hpp>

#include <string_view>
#include <system_error>

namespace pidlock {

/// Sends `assignments` (newline-separated "KEY=VALUE" lines, e.g.
/// "WATCHDOG=1" or "RELOADING=1") as one datagram to $NOTIFY_SOCKET.
/// Returns true if it was sent; false without an error when NOTIFY_SOCKET is
/// not set (not running under a service manager); false with `ec` set when
/// sending failed (EAFNOSUPPORT: NOTIFY_SOCKET is neither a path nor an
/// '@' name; ECONNREFUSED, ENOENT: nobody listens there).
PIDLOCK_EXPORT bool notify_service_manager(std::string_view assignments, std::error_code& ec) noexcept;

}  // namespace pidlock

#endif  // PIDLOCK_SERVICE_MANAGER_HPP
