#include "file/file_owner.hpp"

#include "posix/system.hpp"

namespace pidlock::detail {

bool owned_as_if_created(int dir_fd, const struct stat& st) {
  if (st.st_uid != sys().geteuid()) return false;
  struct stat dir {};
  if (sys().fstat(dir_fd, &dir) != 0) return false;
  const gid_t group = (dir.st_mode & S_ISGID) != 0 ? dir.st_gid : sys().getegid();
  return st.st_gid == group;
}

}  // namespace pidlock::detail
