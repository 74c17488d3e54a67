// The failure detector of one lease: when to renew it, and when to give up
// on it, with a margin.
//
// etcd restarts a lease's clock when its leader *receives* a keep-alive, so
// the lease cannot expire on the server before (last keep-alive that
// succeeded was *sent*) + ttl; call that moment E. Nobody else can hold the
// lock before E. The keeper renews every ttl/3 and, if no renewal has
// succeeded, gives up at G = sent + 2/3 ttl — a third of the ttl before E,
// as Kubernetes' leader election gives up at its RenewDeadline, well before
// its LeaseDuration. So a holder cut off from the cluster, or stuck behind a
// frozen member, or without quorum, reports the loss ttl/3 before anyone
// else can have the lock; that third is the time `pidlock run` has to stop
// its job. (Clock rates: E is measured on our monotonic clock and etcd's;
// real rate differences are far below 1/3 of any ttl.)
//
// Each renewal is one call with its deadline at G, hedged across members
// (client.hpp), so a silent member cannot use the margin up.
//
// Thread safety: every member may be called from any thread (each renew()
// with its own Client).
#ifndef PIDLOCK_ETCD_LEASE_KEEPER_HPP
#define PIDLOCK_ETCD_LEASE_KEEPER_HPP

#include "etcd/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace pidlock::detail::etcd {

// After a keep-alive no member answered, try again this soon: the members
// may be electing a leader, which takes about one election timeout.
inline constexpr std::chrono::milliseconds kRenewRetry{100};

class LeaseKeeper {
 public:
  // `renewed_at`: when the grant (or the last keep-alive that succeeded)
  // was sent.
  LeaseKeeper(std::int64_t lease_id, std::chrono::seconds ttl, Clock::time_point renewed_at);

  std::int64_t lease_id() const noexcept { return lease_id_; }
  std::chrono::seconds ttl() const noexcept { return ttl_; }
  Clock::time_point renewed_at() const noexcept;
  // G: give up (report the loss) if no renewal succeeded by then.
  Clock::time_point give_up_at() const noexcept;
  // E: the lease cannot have expired on the server before this.
  Clock::time_point expiry_bound() const noexcept;
  // When the next keep-alive is due (after one went unanswered, the caller
  // retries sooner: see kRenewRetry).
  Clock::time_point next_renewal() const noexcept;

  enum class Result {
    kRenewed,     // the lease lives; G moved on
    kGone,        // etcd says the lease expired or was revoked: *why
    kUnanswered,  // no member answered in time: try again soon (*why)
  };
  // One keep-alive through `client`, with its deadline at G; `cancel_fd`
  // as for Client::call (a cancelled renewal is kUnanswered).
  Result renew(Client& client, std::string* why, int cancel_fd = -1);

 private:
  const std::int64_t lease_id_;
  const std::chrono::seconds ttl_;
  std::atomic<Clock::rep> renewed_at_;
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_LEASE_KEEPER_HPP
