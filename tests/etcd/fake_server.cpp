#include "fake_server.hpp"

#include "support/loopback.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pidlock_etcd_test {

FakeServer::FakeServer(std::string reply) : reply_(std::move(reply)) {
  listen_fd_ = pidlock_test::bind_loopback(&port_, 64);
  if (listen_fd_ < 0) return;
  thread_ = std::thread([this] { run(); });
}

FakeServer::~FakeServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string FakeServer::http(int status, const std::string& body, const std::string& type) {
  return "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

void FakeServer::run() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++requests_;
    // Read the request's head (and whatever body came with it), briefly.
    std::string request;
    char buf[4096];
    for (int i = 0; i < 20 && request.find("\r\n\r\n") == std::string::npos; ++i) {
      pollfd r{fd, POLLIN, 0};
      if (::poll(&r, 1, 50) <= 0) continue;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    (void)!::write(fd, reply_.data(), reply_.size());
    ::shutdown(fd, SHUT_WR);
    // Let the client read it all before the close (a close with unread
    // request bytes would reset the connection).
    pollfd r{fd, POLLIN, 0};
    while (::poll(&r, 1, 100) > 0 && ::read(fd, buf, sizeof buf) > 0) {
    }
    ::close(fd);
  }
}

}  // namespace pidlock_etcd_test
