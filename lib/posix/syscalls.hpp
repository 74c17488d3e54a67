// Named wrappers over the seam: EINTR retried (never for close()), errno
// turned into std::error_code at the call site with save_errno().
#ifndef PIDLOCK_POSIX_SYSCALLS_HPP
#define PIDLOCK_POSIX_SYSCALLS_HPP

#include "posix/system.hpp"

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace pidlock::detail {

// The errno of the call that just failed, as an error_code. Take it before
// any cleanup call that could overwrite errno.
inline std::error_code last_error() noexcept {
  return {errno, std::system_category()};
}

// Calls f() until it does not fail with EINTR.
template <typename F>
auto retry_eintr(F&& f) -> decltype(f()) {
  for (;;) {
    auto r = f();
    if (!(r == -1 && errno == EINTR)) return r;
  }
}

int open_at(int dirfd, const char* name, int flags, mode_t mode = 0);
ssize_t read_at(int fd, void* buf, size_t count, off_t offset);
// Writes all `count` bytes at `offset` (looping over short writes). A write
// that makes no progress fails with ENOSPC, as PostgreSQL reports it.
bool write_all_at(int fd, const void* buf, size_t count, off_t offset);
int fsync_fd(int fd);
// close() is never retried: after EINTR the descriptor is already gone on
// Linux, and a retry could close another thread's new descriptor.
int close_fd(int fd) noexcept;

// An owned descriptor; -1 when empty. Closing errors are ignored, since by
// the time we close, every result that mattered was already checked.
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) close_fd(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_POSIX_SYSCALLS_HPP
