// Dropping root in a forked child, for the tests of EPERM, permissions and
// ownership (the suite runs as root, as CI does).
#ifndef PIDLOCK_TESTS_SUPPORT_PRIVILEGES_HPP
#define PIDLOCK_TESTS_SUPPORT_PRIVILEGES_HPP

#include <sys/types.h>

#include <vector>

namespace pidlock_test {

// nobody, the unprivileged user of Debian and most systems.
inline constexpr uid_t kNobody = 65534;

// Drops this process to uid and gid `id` with `groups` as its only
// supplementary groups (none by default), and proves it: true only if
// every real, effective and saved id is `id`, the supplementary groups are
// exactly `groups`, and going back to root fails. Call it in a forked
// child only.
bool drop_privileges(uid_t id, const std::vector<gid_t>& groups = {});

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_PRIVILEGES_HPP
