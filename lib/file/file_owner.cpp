#include "file/file_owner.hpp"

#include "posix/system.hpp"

#include <fcntl.h>

namespace pidlock::detail {

bool owned_as_if_created(const char* folder, const struct stat& st, std::optional<gid_t> chosen_group) {
  if (st.st_uid != sys().geteuid()) return false;
  if (chosen_group) return st.st_gid == *chosen_group;
  struct stat dir {};
  if (sys().fstatat(AT_FDCWD, folder, &dir, 0) != 0) return false;
  const gid_t group = (dir.st_mode & S_ISGID) != 0 ? dir.st_gid : sys().getegid();
  return st.st_gid == group;
}

}  // namespace pidlock::detail
