#include "support/pipe.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pidlock_test {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Pipe::Pipe() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2: " << std::strerror(errno);
}

Pipe::~Pipe() {
  close_read();
  close_write();
}

void Pipe::close_read() {
  if (fds_[0] >= 0) ::close(fds_[0]);
  fds_[0] = -1;
}

void Pipe::close_write() {
  if (fds_[1] >= 0) ::close(fds_[1]);
  fds_[1] = -1;
}

bool write_string(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool write_line(int fd, const std::string& line) { return write_string(fd, line + "\n"); }

bool write_byte(int fd, char c) { return write_string(fd, std::string(1, c)); }

bool readable_within(int fd, milliseconds timeout) {
  struct pollfd p {fd, POLLIN, 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    int rc = ::poll(&p, 1, left.count() < 0 ? 0 : static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc == 0 || errno != EINTR) return false;
  }
}

std::optional<char> read_byte(int fd, milliseconds timeout) {
  if (!readable_within(fd, timeout)) return std::nullopt;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    return std::nullopt;
  }
}

std::optional<std::string> read_line(int fd, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return std::nullopt;
    std::optional<char> c = read_byte(fd, left);
    if (!c) return std::nullopt;
    if (*c == '\n') return line;
    line += *c;
  }
}

void wait_for_eof(int fd) {
  char buf[64];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

}  // namespace pidlock_test
