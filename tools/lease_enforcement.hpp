// What `pidlock run` does around COMMAND beyond starting it and waiting:
// the environment COMMAND is given, and, for a lock in a lease-based store
// (etcd://), the enforcement of the lease.
//
// A lock file is held by the kernel for as long as COMMAND holds its
// descriptor, so nothing needs enforcing. An etcd lock is held by
// pidlock's keep-alives, and is lost when they fail; so for an etcd lock:
//  * COMMAND dies with pidlock: it gets SIGKILL when pidlock dies
//    (PR_SET_PDEATHSIG), since nobody would keep the lease alive for it;
//  * when the lock is lost while COMMAND runs, COMMAND gets SIGTERM at once
//    and SIGKILL after a grace period, which never ends later than halfway
//    from the loss to the moment etcd could give the lock to someone else
//    (LockHandle::safe_until(); `--kill-after` may shorten it), and pidlock
//    exits with kLockLost. The library reports the loss a third of the ttl
//    before that moment (lib/etcd/lease_keeper.hpp), so COMMAND is gone
//    before another holder can start.
//
// COMMAND's environment gets PIDLOCK_LOCK (the lock's address or path, as
// given) and, for an etcd lock, PIDLOCK_FENCING_TOKEN.
#ifndef PIDLOCK_TOOLS_LEASE_ENFORCEMENT_HPP
#define PIDLOCK_TOOLS_LEASE_ENFORCEMENT_HPP

#include <pidlock/lock_handle.hpp>

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::cli {

class LeaseEnforcement {
 public:
  // `lock` is the address or path as the user wrote it.
  LeaseEnforcement(const LockHandle& handle, std::string lock, std::optional<std::chrono::milliseconds> kill_after);

  // Whether the lock has a lease to enforce (etcd).
  bool active() const noexcept { return active_; }

  // COMMAND's environment (pidlock's, plus the variables above); valid for
  // the life of this object. Built before fork(), since the child may only
  // make async-signal-safe calls.
  char** environment() noexcept { return envp_.data(); }

  // In the forked child, before exec: async-signal-safe. For an etcd lock,
  // arranges SIGKILL on pidlock's death, and _exits if pidlock (`parent`)
  // is already gone.
  void in_child(pid_t parent) const noexcept;

  // Waits for COMMAND (`child`) to end, stopping it if the lock is lost.
  // Returns COMMAND's exit status (128+N for signal N), or kLockLost if
  // the lock was lost while COMMAND ran.
  int wait(pid_t child);

 private:
  // The moment to send SIGKILL after a loss noticed at `now`.
  std::chrono::steady_clock::time_point kill_time(std::chrono::steady_clock::time_point now) const;
  void stop(pid_t child, const std::string& reason);

  const LockHandle& handle_;
  const std::string lock_;
  const std::optional<std::chrono::milliseconds> kill_after_;
  const bool active_;
  std::vector<std::string> variables_;
  std::vector<char*> envp_;
  std::optional<std::chrono::steady_clock::time_point> kill_at_;
  bool killed_ = false;
};

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_LEASE_ENFORCEMENT_HPP
