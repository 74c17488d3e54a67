// A lock held in etcd: a key created under our lease, kept alive from a
// background thread.
//
// The lock is ours while (a) our lease lives and (b) the key still has the
// create revision our transaction gave it (the fencing token) and our
// lease. A monitor thread keeps the lease alive every TTL/3 and watches the
// key. It declares the lock lost, once and for good, when
//  * etcd answers a keep-alive with "expired" or "not found";
//  * no keep-alive has succeeded for a whole TTL: measured from the moment
//    the last successful keep-alive was *sent*, which is never later than
//    when etcd restarted the lease's clock, so our deadline never outlives
//    etcd's (a frozen or partitioned holder gives up no later than etcd
//    frees the key; the error is always on the safe side);
//  * the watch reports the key deleted, or re-created by someone else.
// A loss makes the loss descriptor (an eventfd) readable, so that
// LockWatch wakes (watch_for_loss()).
#ifndef PIDLOCK_ETCD_ETCD_LOCK_HPP
#define PIDLOCK_ETCD_ETCD_LOCK_HPP

#include "etcd/address.hpp"
#include "etcd/client.hpp"
#include "posix/syscalls.hpp"
#include "held_lock.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace pidlock::detail::etcd {

// What a successful acquire transaction established.
struct Grant {
  Address address;
  std::int64_t lease_id = 0;
  std::chrono::seconds ttl{0};     // as granted by etcd
  std::uint64_t token = 0;         // the key's create revision
  Clock::time_point lease_deadline;  // grant request sent + ttl
  std::size_t preferred = 0;       // the member that answered
};

class EtcdLock final : public HeldLock {
 public:
  // Starts the monitor thread. Throws std::system_error if the eventfds or
  // the thread cannot be created. `address` is the lock's address as given,
  // `record` the record stored under the key.
  EtcdLock(Grant grant, boost::filesystem::path address, HolderRecord record);
  ~EtcdLock() override;

  std::optional<std::uint64_t> fencing_token() const noexcept override { return grant_.token; }

 private:
  // The held-lock interface, over the operations below.
  Failure release_locked() override;
  bool recheck_locked(std::string* why, std::error_code* ec) override { return check_key(why, ec); }
  Failure write_record(const HolderRecord& next) override;
  Failure touch_locked() override;
  std::unique_ptr<LossSource> watch_locked(Failure* failure) override;
  Failure claim_locked(const HolderRecord& next) override;

  // Gives the lock up (revokes the lease, which deletes the key).
  std::error_code revoke_lease() noexcept;
  // Is the key still ours? false with *why on loss; *ec on an error that
  // leaves the answer open.
  bool check_key(std::string* why, std::error_code* ec) noexcept;
  // Replaces the stored holder record.
  std::error_code put_record(const HolderRecord& record) noexcept;
  // Refreshes the lease now.
  std::error_code refresh_lease() noexcept;

  void run() noexcept;
  void monitor();
  void stop_monitor() noexcept;
  void lose(const std::string& why);
  bool lost(std::string* why);
  Clock::time_point deadline() const noexcept { return Clock::time_point(Clock::duration(deadline_.load())); }
  void extend(Clock::time_point to) noexcept;
  // One keep-alive through `client`; false once the lock is lost.
  // *unreachable is set when no member answered.
  bool keep_alive(Client& client, std::chrono::milliseconds timeout, bool* unreachable, std::error_code* ec);
  // Does an event on the key (or the key as it is now) mean the lock is
  // gone? Sets *why.
  bool not_ours(const KeyValue* kv, bool deleted, std::string* why) const;

  const Grant grant_;
  Client client_;  // for the caller's calls, serialised by HeldLock's mutex
  std::atomic<Clock::rep> deadline_;
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
