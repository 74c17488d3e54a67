#include "support/lock_children.hpp"

#include "support/files.hpp"

#include "posix/system.hpp"

#include <pidlock/pidlock.hpp>
#include <pidlock/unix_socket.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <system_error>

namespace pidlock_test {

namespace {

// In a child: the real System, whatever the test installed before forking.
void use_the_real_system() { pidlock::detail::set_system(nullptr); }

// Binds and listens on a Unix socket at `path`; -1 with errno on failure.
int listen_at(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (fd < 0 || ::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0)
    return -1;
  return fd;
}

}  // namespace

HeldInChild::HeldInChild(const std::string& path, Kind kind) {
  child_ = Child::fork([&]() -> int {
    ready_.close_read();
    go_.close_write();
    // Another process, not a sharer of ours: without this the child would
    // hold a share of every lock the test process holds (a lock lives as
    // long as any process that inherited it).
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != ready_.write_end() && fd != go_.read_end()) ::close(fd);
    use_the_real_system();
    pidlock::LockManager manager;
    std::error_code ec;
    pidlock::LockHandle handle;
    int listener = -1;
    if (kind == Kind::kUnixSocket) {
      handle = pidlock::lock_unix_socket(manager, path, {}, ec);
      if (!ec && (listener = listen_at(path)) < 0) ec = std::error_code(errno, std::generic_category());
    } else {
      handle = manager.acquire(path, {}, ec);
    }
    if (ec) {
      write_byte(ready_.write_end(), 'E');
      return 1;
    }
    write_byte(ready_.write_end(), 'R');
    // Hold until told (or until the test process goes away: EOF).
    read_byte(go_.read_end(), std::chrono::hours(1));
    if (listener >= 0) ::unlink(path.c_str());  // as a server does at shutdown
    return handle.release() ? 2 : 0;
  });
  ready_.close_write();
  go_.close_read();
  ok_ = read_byte(ready_.read_end()) == 'R';
}

bool HeldInChild::release() {
  write_byte(go_.write_end());
  return child_.exited_with(0);
}

void HeldInChild::kill() {
  child_.kill(SIGKILL);
  child_.wait();
}

pid_t leave_stale_lock(const std::string& path) {
  Child child = Child::fork([&]() -> int {
    use_the_real_system();
    pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
    pidlock::LockManager manager;
    std::error_code ec;
    pidlock::LockHandle handle = manager.acquire(path, {}, ec);
    if (!handle) return 1;
    ::_exit(0);  // no release: the file stays, its kernel lock dies with us
  });
  const int status = child.wait();
  const bool left = WIFEXITED(status) && WEXITSTATUS(status) == 0 && exists(path);
  EXPECT_TRUE(left) << "no stale lock left at " << path << " (" << describe_status(status) << ")";
  return left ? child.pid() : -1;
}

std::string acquire_in_child(const std::string& path, bool* took_over) {
  Child child = Child::fork([&](int report) -> int {
    use_the_real_system();
    pidlock::LockManager manager;
    std::error_code ec;
    pidlock::LockHandle handle = manager.acquire(path, {}, ec);
    std::string message;
    if (!handle) {
      message = "child acquire failed: " + ec.message();
    } else {
      message = handle.took_over() ? "T" : "F";
      if (std::error_code rec = handle.release()) message = "child release failed: " + rec.message();
    }
    write_line(report, message);
    return 0;
  });
  const std::string message = child.read_line().value_or("");
  const int status = child.wait();
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) return "child died: " + describe_status(status);
  if (message == "T" || message == "F") {
    if (took_over) *took_over = message == "T";
    return "";
  }
  return message.empty() ? "child said nothing" : message;
}

int inspect_in_child(const std::string& path) {
  Child child = Child::fork([&]() -> int {
    use_the_real_system();
    pidlock::LockManager manager;
    std::error_code ec;
    pidlock::Inspection inspection = manager.inspect(path, {}, ec);
    if (ec) return 100;
    return static_cast<int>(inspection.verdict);
  });
  const int status = child.wait();
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 100) return -1;
  return WEXITSTATUS(status);
}

}  // namespace pidlock_test
