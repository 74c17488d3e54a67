#include "etcd/lease_keeper.hpp"

#include <algorithm>

namespace pidlock::detail::etcd {

LeaseKeeper::LeaseKeeper(std::int64_t lease_id, std::chrono::seconds ttl, Clock::time_point renewed_at)
    : lease_id_(lease_id), ttl_(ttl), renewed_at_(renewed_at.time_since_epoch().count()) {}

Clock::time_point LeaseKeeper::renewed_at() const noexcept {
  return Clock::time_point(Clock::duration(renewed_at_.load()));
}

Clock::time_point LeaseKeeper::give_up_at() const noexcept {
  return renewed_at() + std::chrono::duration_cast<Clock::duration>(ttl_) * 2 / 3;
}

Clock::time_point LeaseKeeper::expiry_bound() const noexcept { return renewed_at() + ttl_; }

Clock::time_point LeaseKeeper::next_renewal() const noexcept {
  return renewed_at() + std::chrono::duration_cast<Clock::duration>(ttl_) / 3;
}

LeaseKeeper::Result LeaseKeeper::renew(Client& client, std::string* why, int cancel_fd) {
  const Clock::time_point sent = Clock::now();
  const std::string id = std::to_string(lease_id_);
  Reply r = client.call("/v3/lease/keepalive", Json{{"ID", id}}, give_up_at(), cancel_fd);
  if (r.status == Reply::Status::kUnreachable || r.status == Reply::Status::kMisconfigured) {
    // A member that stopped answering as etcd cannot confirm the lease
    // either; either way the lease is unconfirmed until G.
    *why = r.message;
    return Result::kUnanswered;
  }
  if (r.status == Reply::Status::kRefused) {
    *why = "etcd refused to keep lease " + id + " alive: " + r.message;
    return Result::kGone;
  }
  std::int64_t ttl = int_field(r.body["result"], "TTL");
  if (ttl <= 0) {
    *why = "lease " + id + " expired (etcd reports no time left on it)";
    return Result::kGone;
  }
  // Only ever forward: an answer to an older keep-alive (another thread's
  // touch()) must not pull G back, nor a late one push it past the truth.
  Clock::rep want = sent.time_since_epoch().count();
  Clock::rep have = renewed_at_.load();
  while (want > have && !renewed_at_.compare_exchange_weak(have, want)) {
  }
  return Result::kRenewed;
}

}  // namespace pidlock::detail::etcd
