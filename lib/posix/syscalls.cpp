#include "posix/syscalls.hpp"

namespace pidlock::detail {

int open_at(int dirfd, const char* name, int flags, mode_t mode) {
  return retry_eintr([&] { return sys().openat(dirfd, name, flags, mode); });
}

ssize_t read_at(int fd, void* buf, size_t count, off_t offset) {
  return retry_eintr([&] { return sys().pread(fd, buf, count, offset); });
}

bool write_all_at(int fd, const void* buf, size_t count, off_t offset) {
  const char* p = static_cast<const char*>(buf);
  while (count > 0) {
    ssize_t n = retry_eintr([&] { return sys().pwrite(fd, p, count, offset); });
    if (n < 0) return false;
    if (n == 0) {
      errno = ENOSPC;  // no progress and no errno: assume the disk is full
      return false;
    }
    p += n;
    count -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

int fsync_fd(int fd) {
  return retry_eintr([&] { return sys().fsync(fd); });
}

int close_fd(int fd) noexcept { return sys().close(fd); }

}  // namespace pidlock::detail
