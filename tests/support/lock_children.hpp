// Locks held, left behind or looked at by real child processes, each with
// the real System (a fault a test installed in itself stays in the test).
#ifndef PIDLOCK_TESTS_SUPPORT_LOCK_CHILDREN_HPP
#define PIDLOCK_TESTS_SUPPORT_LOCK_CHILDREN_HPP

#include "support/child.hpp"
#include "support/pipe.hpp"

#include <sys/types.h>

#include <string>

namespace pidlock_test {

// A lock held by a forked child: the child closes the descriptors it
// inherited (so that it shares none of the test's locks), acquires `path`
// (or, as kUnixSocket, lock_unix_socket(path) and then binds and listens on
// a socket there), reports through a pipe, and holds until release() or
// kill(). Destruction kills it (the lock file stays behind, as after a
// crash).
class HeldInChild {
 public:
  enum class Kind { kLockFile, kUnixSocket };
  explicit HeldInChild(const std::string& path, Kind kind = Kind::kLockFile);
  // Did the child acquire the lock?
  bool ok() const { return ok_; }
  pid_t pid() const { return child_.pid(); }
  // Asks the child to release and exit; true if it released without error.
  bool release();
  // SIGKILLs the child and reaps it (its lock file stays behind).
  void kill();

 private:
  Pipe ready_;
  Pipe go_;
  Child child_;
  bool ok_ = false;
};

// Leaves a stale pidlock lock file at `path`: a child acquires it and
// exits without releasing (its kernel lock dies with it). Returns the dead
// holder's pid, or -1 (after a test failure) if there is no such file.
pid_t leave_stale_lock(const std::string& path);

// Acquires `path` in a fresh child and releases it; "" on success, else
// what went wrong. `took_over` receives whether the child took over a
// stale lock.
std::string acquire_in_child(const std::string& path, bool* took_over = nullptr);

// Inspects `path` from a fresh child; the verdict as an int, or -1 on
// error.
int inspect_in_child(const std::string& path);

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_LOCK_CHILDREN_HPP
