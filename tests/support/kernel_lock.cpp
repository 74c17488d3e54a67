#include "support/kernel_lock.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pidlock_test {

bool byte_locked(int fd, off_t byte) {
  // A write lock is refused by any lock on the byte: F_OFD_GETLK reports it.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) {
    ADD_FAILURE() << "F_OFD_GETLK on descriptor " << fd << ": " << std::strerror(errno);
    return false;
  }
  return fl.l_type != F_UNLCK;
}

bool byte_locked(const std::string& path, off_t byte) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << std::strerror(errno);
    return false;
  }
  bool locked = byte_locked(fd, byte);
  ::close(fd);
  return locked;
}

}  // namespace pidlock_test
