// What the held locks tell the service manager (include/pidlock/service_manager.hpp).
#ifndef PIDLOCK_SERVICE_MANAGER_INTERNAL_HPP
#define PIDLOCK_SERVICE_MANAGER_INTERNAL_HPP

#include <string>
#include <string_view>

namespace pidlock::detail {

// The sd_notify message for a new status word: READY=1 for "ready" and
// "standby", STOPPING=1 for "stopping", and STATUS=<word> always.
std::string status_notification(std::string_view status);
// Does the message announce readiness (so that a release owes STOPPING=1)?
bool announces_ready(std::string_view status) noexcept;

// Sends `message` if NOTIFY_SOCKET is set; a failure is logged as a
// warning naming the lock file at `path`, and otherwise ignored.
void notify_or_warn(std::string_view message, const std::string& path) noexcept;

}  // namespace pidlock::detail

#endif  // PIDLOCK_SERVICE_MANAGER_INTERNAL_HPP
