// A lock held in etcd: our key in the lock's queue (lock_queue.hpp) is the
// first, under our lease, kept alive from a background thread.
//
// The lock is ours while (a) our lease lives and (b) our key still has the
// create revision it was given (the fencing token) and our lease. A monitor
// thread renews the lease (LeaseKeeper: every ttl/3, giving up at 2/3 of the
// ttl without a renewal, a third of the ttl before etcd could give the lock
// to anyone else) and watches our key (KeyWatch: on a member that is
// probed for life). It declares the lock lost, once and for good, when
//  * etcd answers a keep-alive with "expired" or "not found";
//  * no keep-alive has succeeded by the keeper's give-up time (etcd
//    unreachable, no quorum, or this process was stopped);
//  * the watch or a probe shows our key deleted, or re-created by someone
//    else.
// A loss makes loss_fd() (an eventfd) readable, so that LockWatch wakes. The
// lease is not revoked at a loss: whoever acts on the loss (the job of
// `pidlock run`) may still be running, and the lease keeps others out until
// safe_until(); release() revokes it.
#ifndef PIDLOCK_ETCD_ETCD_LOCK_HPP
#define PIDLOCK_ETCD_ETCD_LOCK_HPP

#include "etcd/address.hpp"
#include "etcd/client.hpp"
#include "etcd/lease_keeper.hpp"
#include "etcd/watch_stream.hpp"
#include "held_lock.hpp"
#include "posix/syscalls.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pidlock::detail::etcd {

class KeyWatch;

// What a successful acquire established.
struct Grant {
  Address address;
  std::int64_t lease_id = 0;
  std::chrono::seconds ttl{0};      // as granted by etcd
  Clock::time_point renewed_at;     // the grant's or last keep-alive's sending
  std::uint64_t token = 0;          // our key's create revision
  std::string key;                  // our key in the queue
  std::size_t preferred = 0;        // the member that answered last
  std::string cluster_id;
};

class EtcdLock final : public HeldLock {
 public:
  // Starts the monitor thread. Throws std::system_error if the eventfds or
  // the thread cannot be created. `address` is the lock's address as given,
  // `record` the record stored under our key.
  EtcdLock(Grant grant, boost::filesystem::path address, HolderRecord record);
  ~EtcdLock() override;

  std::optional<std::uint64_t> fencing_token() const noexcept override { return grant_.token; }
  std::optional<std::chrono::steady_clock::time_point> safe_until() const noexcept override {
    return keeper_.expiry_bound();
  }

 private:
  // The held-lock interface, over the operations below.
  Failure release_locked() override;
  bool recheck_locked(std::string* why, std::error_code* ec) override { return check_key(why, ec); }
  Failure write_record(const HolderRecord& next) override;
  Failure touch_locked() override;
  std::unique_ptr<LossSource> watch_locked(Failure* failure) override;
  Failure claim_locked(const HolderRecord& next) override;

  // Gives the lock up (revokes the lease, which deletes our key).
  std::error_code revoke_lease() noexcept;
  // Is our key still ours? false with *why on loss; *ec on an error that
  // leaves the answer open.
  bool check_key(std::string* why, std::error_code* ec) noexcept;
  // Replaces the stored holder record.
  std::error_code put_record(const HolderRecord& record) noexcept;
  // Renews the lease now.
  std::error_code refresh_lease() noexcept;

  void run() noexcept;
  void monitor();
  // Handles what the watch reported; false once the lock is lost.
  bool still_ours(const std::vector<WatchEvent>& events);
  // After the watch's history was compacted away; false once the lock is lost.
  bool resume_after_compaction(Client& client, KeyWatch& watch, Clock::time_point until);
  void stop_monitor() noexcept;
  void lose(const std::string& why);
  bool lost(std::string* why);
  // Does the key as seen (or a delete of it) mean the lock is gone? Sets *why.
  bool not_ours(const KeyValue* kv, bool deleted, std::string* why) const;
  // The deadline of a caller's call: never past the keeper's give-up time.
  Clock::time_point call_deadline() const;

  const Grant grant_;
  Client client_;  // for the caller's calls, serialised by HeldLock::mutex
  LeaseKeeper keeper_;
  std::mutex loss_mutex_;
  std::atomic<bool> lost_{false};
  std::string loss_reason_;
  UniqueFd loss_fd_;
  UniqueFd stop_fd_;
  std::thread monitor_;
  bool released_ = false;
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_ETCD_LOCK_HPP
