#include "support/notify_socket.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <random>

namespace pidlock_test {

NotifySocket::NotifySocket(Kind kind) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd_, 0) << std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t length = sizeof addr;
  if (kind == Kind::kPath) {
    address_ = dir_ / "notify";
    std::strcpy(addr.sun_path, address_.c_str());
  } else {
    // An abstract name is global to the network namespace: make it unique.
    address_ = "@pidlock-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    addr.sun_path[0] = '\0';
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
  }
  EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), length), 0) << std::strerror(errno);
  ::setenv("NOTIFY_SOCKET", address_.c_str(), 1);
}

NotifySocket::~NotifySocket() {
  ::unsetenv("NOTIFY_SOCKET");
  ::close(fd_);
}

std::optional<std::string> NotifySocket::receive(std::chrono::milliseconds patience) {
  if (!readable_within(fd_, patience)) return std::nullopt;
  char buffer[4096];
  const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace pidlock_test
