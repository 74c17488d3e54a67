// sd_notify(3) spoken directly: the protocol is one datagram, which is not
// worth a dependency on libsystemd.
#include <pidlock/service_manager.hpp>

#include "service_manager.hpp"

#include "core/log.hpp"
#include "posix/syscalls.hpp"

#include <cstdlib>

namespace pidlock {

bool notify_service_manager(std::string_view assignments, std::error_code& ec) noexcept {
  ec.clear();
  // Read at each call, not cached: a program may set or unset it (systemd's
  // sd_notify can unset it so that children do not inherit it).
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return false;
  const ssize_t sent = detail::retry_eintr(
      [&] { return detail::sys().send_datagram(socket, assignments.data(), assignments.size()); });
  if (sent < 0) {
    ec = detail::last_error();
    return false;
  }
  return true;
}

namespace detail {

bool announces_ready(std::string_view status) noexcept { return status == "ready" || status == "standby"; }

std::string status_notification(std::string_view status) {
  std::string message;
  if (announces_ready(status)) message = "READY=1\n";
  if (status == "stopping") message = "STOPPING=1\n";
  message += "STATUS=";
  message += status;
  return message;
}

void notify_or_warn(std::string_view message, const std::string& path) noexcept {
  std::error_code ec;
  if (notify_service_manager(message, ec) || !ec) return;
  const char* socket = std::getenv("NOTIFY_SOCKET");
  PIDLOCK_LOG(warning) << "lock file \"" << path << "\": could not notify the service manager at NOTIFY_SOCKET="
                       << (socket ? socket : "") << ": " << ec.message();
}

}  // namespace detail
}  // namespace pidlock
