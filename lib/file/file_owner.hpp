// Who owns a file this process creates: the owner and group a take-over
// must leave on a lock file that it rewrites in place (guarantee G5: the
// file must not stay writable by the previous holder's user, who could
// otherwise rewrite line 1 while we hold the lock).
#ifndef PIDLOCK_FILE_FILE_OWNER_HPP
#define PIDLOCK_FILE_FILE_OWNER_HPP

#include <sys/stat.h>

#include <optional>

namespace pidlock::detail {

// Would a file that this process created in the folder `folder` have the
// owner and group of `st`? Owner: our effective uid. Group: `chosen_group`
// if there is one (AcquireOptions::group), else the folder's where it has
// the set-group-ID bit (BSD semantics, which Linux follows), our effective
// gid otherwise. False, too, if the folder cannot be examined.
bool owned_as_if_created(const char* folder, const struct stat& st, std::optional<gid_t> chosen_group = std::nullopt);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_FILE_OWNER_HPP
