#include "file/file_owner.hpp"

#include "posix/system.hpp"

#include <fcntl.h>

namespace pidlock::detail {

bool owned_as_if_created(const char* folder, const struct stat& st, std::optional<gid_t> chosen_group) {
  if (st.st_uid != sys().geteuid()) return false;
  if (chosen_group) return st.st_gid == *chosen_group;
  // Our own user and group: as safe as a file we created in a folder
  // without the set-group-ID bit, whatever this folder has; and no stat of
  // the folder in the middle of every hand-off.
  const gid_t own_group = sys().getegid();
  if (st.st_gid == own_group) return true;
  struct stat dir {};
  if (sys().fstatat(AT_FDCWD, folder, &dir, 0) != 0) return false;
  return (dir.st_mode & S_ISGID) != 0 && st.st_gid == dir.st_gid;
}

}  // namespace pidlock::detail
