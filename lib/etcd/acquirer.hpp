// Taking an etcd lock: one try, or a place in the queue and a wait for our
// turn (etcd's lock recipe, lock_queue.hpp).
//
// A try (no waiting) grants a lease and, in one transaction, puts our key
// if and only if no key exists under the lock's prefix: it never jumps a
// queue. A waiting acquire puts its key unconditionally (it joins the
// queue), then sleeps until the key just before its own is deleted,
// keeping its lease alive meanwhile (LeaseKeeper) and its watch on a live
// member (KeyWatch). One read after each wake-up tells whether it is first.
//
// Lease ids are chosen here (random), not by etcd, so that a grant whose
// answer was lost can still be revoked, and a grant delivered twice by a
// hedged call cannot create two leases. A lease whose fate is unknown (no
// member answered) is revoked before the next attempt; until that works,
// the lock counts as unknown, since a key of ours might still be under it.
//
// Exclusion (G1) rests on etcd: transactions and reads are linearizable,
// so no two contenders ever both see their key first.
#ifndef PIDLOCK_ETCD_ACQUIRER_HPP
#define PIDLOCK_ETCD_ACQUIRER_HPP

#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include "etcd/client.hpp"
#include "etcd/etcd_lock.hpp"
#include "etcd/lease_keeper.hpp"
#include "core/failure.hpp"
#include "core/identity.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pidlock::detail::etcd {

class Acquirer {
 public:
  // `value` is the holder record to store with our key.
  Acquirer(const Address& address, const AcquireOptions& options, std::string value, SelfIdentity self);
  // Revokes a lease still held for a queue place (best effort).
  ~Acquirer();
  Acquirer(const Acquirer&) = delete;
  Acquirer& operator=(const Acquirer&) = delete;

  // The whole acquire. On failure sets *failure: errc::held with *held,
  // cancelled, already_held_by_this_process, misconfigured, EACCES, ...
  std::optional<Grant> run(Failure* failure, Inspection* held);

 private:
  enum class Step {
    kAcquired,     // grant_ is ours
    kHeld,         // someone else has it; *held says who (tries only)
    kUnreachable,  // no member answered; *held is the unknown verdict
    kAgain,        // look again now
    kFailed,       // *failure is set
  };
  enum class Turn { kChanged, kTimeout, kCancelled, kLeaseLost };

  Step try_once(Failure* failure, Inspection* held);
  Step join_queue(Failure* failure, Inspection* held);
  Step take_turn(Failure* failure, Inspection* held);
  // Sleeps until `predecessor` is deleted (none: a retry interval),
  // renewing our lease.
  Turn wait_turn(const KeyValue* predecessor, std::int64_t from_revision);

  bool grant_lease(Failure* failure, Inspection* held, Step* step);
  // Revokes our lease; if that cannot be confirmed, remembers it as an
  // orphan to revoke before the next attempt.
  void drop_lease();
  // Revokes orphaned leases; false while some remain.
  bool clear_orphans();
  Step reply_failure(const Reply& r, const std::string& operation, Failure* failure, Inspection* held);
  Grant make_grant(std::uint64_t token) const;
  Clock::time_point call_deadline() const;
  bool past_deadline() const { return deadline_ && Clock::now() >= *deadline_; }

  const Address address_;
  const AcquireOptions& options_;
  const std::string value_;
  const SelfIdentity self_;
  const bool waits_;
  std::optional<Clock::time_point> deadline_;
  const std::chrono::milliseconds retry_;
  Client client_;
  std::optional<LeaseKeeper> keeper_;  // our lease, once granted
  std::string own_key_;
  std::int64_t own_revision_ = 0;  // our key's create revision, once queued
  std::vector<std::int64_t> orphans_;
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_ACQUIRER_HPP
