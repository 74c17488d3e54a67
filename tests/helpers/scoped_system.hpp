// Fault injection through the OS seam (lib/posix/system.hpp): installs a
// test System for the life of a scope.
#ifndef PIDLOCK_TESTS_HELPERS_SCOPED_SYSTEM_HPP
#define PIDLOCK_TESTS_HELPERS_SCOPED_SYSTEM_HPP

#include "posix/system.hpp"

namespace pidlock_test {

class ScopedSystem {
 public:
  explicit ScopedSystem(pidlock::detail::System* replacement)
      : previous_(pidlock::detail::set_system(replacement)) {}
  ~ScopedSystem() { pidlock::detail::set_system(previous_); }
  ScopedSystem(const ScopedSystem&) = delete;
  ScopedSystem& operator=(const ScopedSystem&) = delete;

 private:
  pidlock::detail::System* previous_;
};

// A file system without kernel locks (as some NFS and FUSE mounts): every
// lock call says "unsupported", so only pid evidence is left.
class NoKernelLocksSystem : public pidlock::detail::SystemWrapper {
 public:
  NoKernelLocksSystem() : SystemWrapper(pidlock::detail::real_system()) {}
  pidlock::detail::KernelLock try_lock(int) override {
    return pidlock::detail::KernelLock::kUnsupported;
  }
  pidlock::detail::LockQuery query_lock(int) override {
    return pidlock::detail::LockQuery::kUnsupported;
  }
  int unlock(int) override {
    errno = ENOLCK;
    return -1;
  }
  int announce_waiter(int) override {
    errno = ENOLCK;
    return -1;
  }
  pidlock::detail::LockQuery query_waiters(int) override {
    return pidlock::detail::LockQuery::kUnsupported;
  }
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_HELPERS_SCOPED_SYSTEM_HPP
