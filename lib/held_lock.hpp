// The held-lock interface: the state behind a LockHandle, implemented by
// each store (file/file_lock.hpp, etcd/etcd_lock.hpp).
//
// What every held lock shares lives here: its address, the record it
// published, whether it took over a stale lock, the process that acquired
// it, and a mutex that serialises every operation on it. The public calls
// take the mutex, refuse a released lock, and then ask the store's
// implementation (the *_locked functions) to do the work, so that each
// store writes only what differs.
#ifndef PIDLOCK_HELD_LOCK_HPP
#define PIDLOCK_HELD_LOCK_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/lock_handle.hpp>

#include "core/failure.hpp"

#include <boost/filesystem/path.hpp>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace pidlock::detail {

// News that a held lock may have been lost, for LockWatch: a descriptor to
// poll, and a way to consume what it reported.
class LossSource {
 public:
  virtual ~LossSource() = default;
  // Becomes readable when the lock may have been lost.
  virtual int fd() const noexcept = 0;
  // Consumes the news; true if anything happened that calls for a recheck.
  virtual bool consume() = 0;
};

class HeldLock {
 public:
  HeldLock(boost::filesystem::path&& address, HolderRecord&& record, std::optional<Inspection>&& previous,
           pid_t owner_pid);
  virtual ~HeldLock() = default;
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;

  // Set at acquire, never changed.
  const Path& path() const noexcept { return path_; }
  bool took_over() const noexcept { return previous_.has_value(); }
  const std::optional<Inspection>& previous_holder() const noexcept { return previous_; }
  // The record as last written (a copy: another thread may rewrite it).
  HolderRecord record() const;
  bool active() const noexcept { return active_.load(); }

  // Gives the lock up (see LockHandle::release). A process other than the
  // one that acquired it never removes anything. Idempotent: not_held after
  // the first call.
  std::error_code release() noexcept;
  // Is the lock still ours? false with *why on loss (nothing logged for a
  // released lock); false with *ec when the answer is open (I/O error).
  bool recheck(std::string* why, std::error_code* ec) noexcept;
  // Rewrites the record with `change` applied; logs and reports a failure.
  std::error_code update(const std::function<void(HolderRecord&)>& change) noexcept;
  // Refreshes the lock's timestamps (files) or lease (etcd).
  std::error_code touch() noexcept;
  // In a process that inherited the lock through fork(): makes this process
  // its holder (the record names it, and its release removes the lock).
  // Nothing to do in the process that holds it already.
  std::error_code claim() noexcept;

  // sd_notify (service_manager.hpp): tells the service manager about a new
  // status word, if this lock may speak to it. A lock that announced
  // READY=1 sends STOPPING=1 at its release, from the owning process only.
  void set_notify_service_manager(bool on) noexcept { notify_service_manager_.store(on); }
  void notify_status(std::string_view status) noexcept;

  // A number that grows with each holder (lease-based stores), if any.
  virtual std::optional<std::uint64_t> fencing_token() const noexcept { return std::nullopt; }
  // The earliest moment the store may end the lease and let another holder
  // in, as of the last renewal (lease-based stores), if any.
  virtual std::optional<std::chrono::steady_clock::time_point> safe_until() const noexcept { return std::nullopt; }
  // The lock's descriptor, or -1.
  virtual int native_handle() const noexcept { return -1; }
  // Starts watching for a loss; null with *failure set if that fails.
  std::unique_ptr<LossSource> watch_for_loss(Failure* failure);

 protected:
  // Is this process the lock's owner: the one that acquired it, or that
  // claimed it since? A forked child never removes its parent's lock, nor
  // gives it up in the store, unless it claimed the lock. Call with the
  // mutex held.
  bool acquired_here() const noexcept;
  // The record as last written, for the store's parts (mutex held).
  const HolderRecord& current_record() const noexcept { return record_; }
  // Runs `f` with the mutex held, for work that no public call started.
  template <typename F>
  auto with_mutex(F&& f) -> decltype(f()) {
    std::lock_guard<std::mutex> guard(mutex_);
    return f();
  }

  // The store's parts, called with the mutex held and the lock active.
  // release_locked is called once; the lock is inactive when it runs.
  virtual Failure release_locked() = 0;
  virtual bool recheck_locked(std::string* why, std::error_code* ec) = 0;
  virtual Failure write_record(const HolderRecord& next) = 0;
  virtual Failure touch_locked() = 0;
  virtual std::unique_ptr<LossSource> watch_locked(Failure* failure) = 0;
  // Makes this process the holder, with `next` (naming it) as the record.
  virtual Failure claim_locked(const HolderRecord& next) = 0;

 private:
  const Path path_;
  const std::optional<Inspection> previous_;
  pid_t owner_pid_;
  HolderRecord record_;
  mutable std::mutex mutex_;
  std::atomic<bool> active_{true};
  std::atomic<bool> notify_service_manager_{false};
  std::atomic<bool> owes_stopping_{false};
};

// Is the status word acceptable? Printable ASCII, no spaces, bounded, and
// not the reserved kReleasedStatus.
bool valid_status(std::string_view status) noexcept;

// Builds handles from state (LockHandle's constructor is private).
struct HandleAccess {
  static LockHandle make(std::shared_ptr<HeldLock> state) noexcept { return LockHandle(std::move(state)); }
  static const std::shared_ptr<HeldLock>& state(const LockHandle& h) noexcept { return h.state_; }
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_HELD_LOCK_HPP
