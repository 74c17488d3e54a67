// A datagram socket standing in for systemd's NOTIFY_SOCKET: bound at a
// path in a fresh folder or at an abstract name, and named by the
// NOTIFY_SOCKET environment variable (inherited by spawned programs) while
// it lives.
#ifndef PIDLOCK_TESTS_SUPPORT_NOTIFY_SOCKET_HPP
#define PIDLOCK_TESTS_SUPPORT_NOTIFY_SOCKET_HPP

#include "support/pipe.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace pidlock_test {

class NotifySocket {
 public:
  enum class Kind { kPath, kAbstract };
  explicit NotifySocket(Kind kind = Kind::kPath);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The next datagram, or nullopt if none comes within `patience`.
  std::optional<std::string> receive(std::chrono::milliseconds patience = kPatience);
  // Nothing is queued now (anything sent before this call would be).
  bool empty() { return !receive(std::chrono::milliseconds(0)); }
  // The NOTIFY_SOCKET value: a path, or "@name".
  const std::string& address() const { return address_; }

 private:
  TempDir dir_;
  std::string address_;
  int fd_ = -1;
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_NOTIFY_SOCKET_HPP
