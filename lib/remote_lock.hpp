// The seam for lock stores other than the local file system (BRIEF.md: "a
// second storage backend ... behind the same LockManager API").
//
// LockManager recognises a store by the lock address's scheme
// ("etcd://host:port,host:port/prefix/name"); everything else is a path.
// A backend returns a HeldLock whose `remote` member implements the
// operations a LockHandle forwards, so handles, LockWatch and release_all()
// work the same for every store.
#ifndef PIDLOCK_REMOTE_LOCK_HPP
#define PIDLOCK_REMOTE_LOCK_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace pidlock {
class Canceller;
}

namespace pidlock::detail {

struct Failure;
struct HeldLock;

// A lock held in a remote store, owned by a HeldLock. Calls are serialised
// by the HeldLock's mutex.
class RemoteLock {
 public:
  virtual ~RemoteLock() = default;
  // Gives the lock up (deletes the key, revokes the lease). Idempotent.
  virtual std::error_code release() noexcept = 0;
  // Is the lock still ours? false with *why on loss; *ec on an error that
  // leaves the answer open.
  virtual bool recheck(std::string* why, std::error_code* ec) noexcept = 0;
  // Replaces the stored holder record.
  virtual std::error_code update(const HolderRecord& record) noexcept = 0;
  // Keeps the lock alive past any idle timeout (refreshes the lease).
  virtual std::error_code touch() noexcept = 0;
  // Grows with each new holder of the lock (etcd: the key's create revision).
  virtual std::uint64_t fencing_token() const noexcept = 0;
  // A descriptor that becomes readable when the lock may have been lost
  // (keep-alive failed, lease expired, key deleted); -1 if none.
  virtual int loss_fd() const noexcept = 0;
};

// Does `address` name a remote store ("etcd://...")?
bool is_remote_address(const std::string& address);

// The backend operations, implemented per store (lib/etcd/). On failure
// they set `failure`; a held lock is failure errc::held with *held set.
std::shared_ptr<HeldLock> remote_acquire(const std::string& address, const AcquireOptions& options,
                                         Failure& failure, Inspection& held);
Inspection remote_inspect(const std::string& address, const JudgeOptions& options, Failure& failure);
Inspection remote_wait_until_free(const std::string& address,
                                  std::optional<std::chrono::milliseconds> timeout,
                                  const Canceller* canceller, Failure& failure);

}  // namespace pidlock::detail

#endif  // PIDLOCK_REMOTE_LOCK_HPP
