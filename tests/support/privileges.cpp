#include "support/privileges.hpp"

#include <grp.h>
#include <unistd.h>

#include <algorithm>

namespace pidlock_test {

bool drop_privileges(uid_t id, const std::vector<gid_t>& groups) {
  if (::setgroups(groups.size(), groups.data()) != 0) return false;
  if (::setresgid(id, id, id) != 0) return false;
  if (::setresuid(id, id, id) != 0) return false;
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (::getresuid(&r, &e, &s) != 0 || ::getresgid(&gr, &ge, &gs) != 0) return false;
  if (r != id || e != id || s != id || gr != id || ge != id || gs != id) return false;
  std::vector<gid_t> now(groups.size() + 1);
  const int n = ::getgroups(static_cast<int>(now.size()), now.data());
  if (n < 0 || static_cast<std::size_t>(n) != groups.size() || !std::equal(groups.begin(), groups.end(), now.begin()))
    return false;
  // Proof that root is really gone: going back must fail.
  return ::setuid(0) != 0 && ::geteuid() == id;
}

}  // namespace pidlock_test
