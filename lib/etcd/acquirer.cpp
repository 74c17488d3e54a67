#include "etcd/acquirer.hpp"

#include <pidlock/canceller.hpp>
#include <pidlock/error.hpp>

#include "etcd/key_watch.hpp"
#include "etcd/lock_queue.hpp"
#include "etcd/verdicts.hpp"
#include "core/log.hpp"
#include "posix/notifier.hpp"

#include <algorithm>
#include <random>

namespace pidlock::detail::etcd {

namespace {

// While no member answers, a waiter asks again this often (bounded by the
// caller's recheck interval).
constexpr std::chrono::milliseconds kUnreachableRetry{500};

std::int64_t random_lease_id() {
  // etcd's lease ids are positive int64s; 63 random bits make a collision
  // with another client's lease (which etcd would refuse) negligible.
  static thread_local std::mt19937_64 generator{(std::uint64_t(std::random_device{}()) << 32) ^
                                                std::random_device{}()};
  std::int64_t id = 0;
  while (id == 0) id = static_cast<std::int64_t>(generator() >> 1);
  return id;
}

bool revoked(const Reply& r) { return r.ok() || (r.status == Reply::Status::kRefused && r.grpc_code == kGrpcNotFound); }

}  // namespace

Acquirer::Acquirer(const Address& address, const AcquireOptions& options, std::string value, SelfIdentity self)
    : address_(address),
      options_(options),
      value_(std::move(value)),
      self_(std::move(self)),
      waits_(options.wait || options.timeout.has_value()),
      retry_(std::min<std::chrono::milliseconds>(options.recheck_interval, kUnreachableRetry)),
      client_(address.cluster) {
  if (options.timeout) deadline_ = Clock::now() + *options.timeout;
}

Acquirer::~Acquirer() {
  if (keeper_) drop_lease();
  clear_orphans();
}

Clock::time_point Acquirer::call_deadline() const {
  // A caller's short timeout also bounds the calls, but every call gets
  // time enough to be answered by a healthy cluster.
  Clock::time_point d = Clock::now() + kCallTimeout;
  if (deadline_) d = std::min(d, std::max(*deadline_, Clock::now() + std::chrono::milliseconds(500)));
  return d;
}

Acquirer::Step Acquirer::reply_failure(const Reply& r, const std::string& operation, Failure* failure,
                                       Inspection* held) {
  switch (r.status) {
    case Reply::Status::kUnreachable:
      *held = unknown_inspection(address_, r.message);
      return Step::kUnreachable;
    case Reply::Status::kMisconfigured:
      *failure = pidlock_failure(errc::misconfigured, operation, r.message);
      return Step::kFailed;
    default:
      *failure = Failure{std::make_error_code(r.grpc_code == kGrpcPermissionDenied ? std::errc::permission_denied
                                                                                    : std::errc::io_error),
                         operation, "etcd: " + r.message};
      return Step::kFailed;
  }
}

bool Acquirer::grant_lease(Failure* failure, Inspection* held, Step* step) {
  const std::int64_t id = random_lease_id();
  const Clock::time_point sent = Clock::now();
  Reply g = client_.call("/v3/lease/grant",
                         Json{{"TTL", std::to_string(address_.ttl.count())}, {"ID", std::to_string(id)}},
                         call_deadline());
  std::chrono::seconds ttl = address_.ttl;
  if (g.ok()) {
    ttl = std::chrono::seconds(int_field(g.body, "TTL"));
    if (ttl.count() <= 0 || int_field(g.body, "ID") != id) {
      *failure = pidlock_failure(errc::misconfigured, "grant etcd lease",
                                 "etcd answered without the lease asked for (id and ttl)");
      *step = Step::kFailed;
      orphans_.push_back(id);
      return false;
    }
  } else if (g.status == Reply::Status::kRefused && g.grpc_code == kGrpcFailedPrecondition &&
             g.message.find("lease already exists") != std::string::npos) {
    // Every attempt of a hedged call said so, or failed: one of them created
    // it. Its ttl is at least the one asked for (etcd only ever raises a
    // ttl), so counting with ours errs on the safe side.
  } else {
    if (g.status == Reply::Status::kUnreachable) orphans_.push_back(id);  // it may exist
    *step = reply_failure(g, "grant etcd lease", failure, held);
    return false;
  }
  keeper_.emplace(id, ttl, sent);
  own_key_ = contender_key(address_.key, id);
  own_revision_ = 0;
  return true;
}

void Acquirer::drop_lease() {
  const std::int64_t id = keeper_->lease_id();
  keeper_.reset();
  own_revision_ = 0;
  if (!revoked(client_.call("/v3/lease/revoke", Json{{"ID", std::to_string(id)}}, call_deadline())))
    orphans_.push_back(id);
}

bool Acquirer::clear_orphans() {
  orphans_.erase(std::remove_if(orphans_.begin(), orphans_.end(),
                                [&](std::int64_t lease) {
                                  return revoked(client_.call("/v3/lease/revoke",
                                                              Json{{"ID", std::to_string(lease)}},
                                                              call_deadline()));
                                }),
                 orphans_.end());
  return orphans_.empty();
}

Grant Acquirer::make_grant(std::uint64_t token) const {
  Grant g;
  g.address = address_;
  g.lease_id = keeper_->lease_id();
  g.ttl = keeper_->ttl();
  g.renewed_at = keeper_->renewed_at();
  g.token = token;
  g.key = own_key_;
  g.preferred = client_.preferred();
  g.cluster_id = client_.cluster_id();
  return g;
}

Acquirer::Step Acquirer::try_once(Failure* failure, Inspection* held) {
  Step step = Step::kFailed;
  if (!grant_lease(failure, held, &step)) return step;
  Reply t = client_.call("/v3/kv/txn", try_request(address_.key, keeper_->lease_id(), value_), call_deadline());
  if (!t.ok()) {
    drop_lease();
    return reply_failure(t, "create etcd key", failure, held);
  }
  if (t.body.value("succeeded", false)) {
    // The put is the transaction's only write, so our key's create revision
    // is the revision the transaction produced.
    own_revision_ = header_revision(t.body);
    return Step::kAcquired;
  }
  const Json* holder_range = txn_range(t.body, 0);
  std::vector<KeyValue> holder = holder_range ? range_kvs(*holder_range) : std::vector<KeyValue>{};
  if (!holder.empty() && holder[0].key == own_key_) {
    // Our own key: a hedged copy of this transaction committed first.
    own_revision_ = holder[0].create_revision;
    return Step::kAcquired;
  }
  drop_lease();
  if (holder.empty()) return Step::kAgain;  // gone since the comparison: look again
  if (written_by(holder[0].value, self_)) {
    *failure = pidlock_failure(errc::already_held_by_this_process, "acquire",
                               "release the existing handle first; a second acquire never breaks or drops it");
    return Step::kFailed;
  }
  *held = holder_inspection(client_, holder[0], int_field(*holder_range, "count"), self_);
  return Step::kHeld;
}

Acquirer::Step Acquirer::join_queue(Failure* failure, Inspection* held) {
  Step step = Step::kFailed;
  if (!grant_lease(failure, held, &step)) return step;
  Reply t = client_.call("/v3/kv/txn", enqueue_request(address_.key, keeper_->lease_id(), value_), call_deadline());
  if (!t.ok()) {
    drop_lease();
    return reply_failure(t, "create etcd key", failure, held);
  }
  const Json* own = txn_range(t.body, 0);
  const Json* holder_range = txn_range(t.body, 1);
  if (t.body.value("succeeded", false)) {
    own_revision_ = header_revision(t.body);
  } else {
    // A hedged copy of the transaction put our key first.
    std::vector<KeyValue> kvs = own ? range_kvs(*own) : std::vector<KeyValue>{};
    if (kvs.empty()) {
      drop_lease();
      return Step::kAgain;
    }
    own_revision_ = kvs[0].create_revision;
  }
  std::vector<KeyValue> holder = holder_range ? range_kvs(*holder_range) : std::vector<KeyValue>{};
  if (!holder.empty() && holder[0].key != own_key_ && written_by(holder[0].value, self_)) {
    // Queueing behind ourselves would wait for ever (or until the timeout).
    drop_lease();
    *failure = pidlock_failure(errc::already_held_by_this_process, "acquire",
                               "release the existing handle first; a second acquire never breaks or drops it");
    return Step::kFailed;
  }
  return Step::kAgain;
}

Acquirer::Turn Acquirer::wait_turn(const KeyValue* predecessor, std::int64_t from_revision) {
  const int cancel_fd = options_.canceller ? options_.canceller->native_handle() : -1;
  std::optional<KeyWatch> watch;
  if (predecessor) {
    watch.emplace(client_, client_.preferred());
    watch->start(predecessor->key, from_revision, /*deletes_only=*/true);
  }
  const Clock::time_point retry_at = Clock::now() + retry_;
  Clock::time_point next_renewal = keeper_->next_renewal();
  std::vector<WatchEvent> events;
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= keeper_->give_up_at()) return Turn::kLeaseLost;
    if (now >= next_renewal) {
      std::string why;
      switch (keeper_->renew(client_, &why, cancel_fd)) {
        case LeaseKeeper::Result::kRenewed: next_renewal = keeper_->next_renewal(); break;
        case LeaseKeeper::Result::kGone: return Turn::kLeaseLost;
        case LeaseKeeper::Result::kUnanswered: next_renewal = Clock::now() + kRenewRetry; break;
      }
      continue;
    }
    if (past_deadline()) return Turn::kTimeout;
    Clock::time_point until = std::min(next_renewal, keeper_->give_up_at());
    if (deadline_) until = std::min(until, *deadline_);
    if (!watch) {
      if (now >= retry_at) return Turn::kChanged;
      until = std::min(until, retry_at);
      if (sleep_until({}, cancel_fd, until - now) == Wake::kCancelled) return Turn::kCancelled;
      continue;
    }
    switch (watch->wait(until, cancel_fd, &events)) {
      case KeyWatch::Result::kEvents:
        for (const auto& ev : events)
          if (ev.deleted) return Turn::kChanged;
        break;
      case KeyWatch::Result::kTimeout: break;
      case KeyWatch::Result::kCancelled: return Turn::kCancelled;
      case KeyWatch::Result::kCompacted: return Turn::kChanged;
    }
  }
}

Acquirer::Step Acquirer::take_turn(Failure* failure, Inspection* held) {
  if (own_revision_ == 0) {
    Step s = join_queue(failure, held);
    if (s != Step::kAgain || own_revision_ == 0) return s;
  }
  Reply p = client_.call("/v3/kv/range", position_request(address_.key, own_revision_), call_deadline());
  const KeyValue* predecessor = nullptr;
  std::vector<KeyValue> kvs;
  if (p.ok()) {
    kvs = range_kvs(p.body);
    if (kvs.empty() || kvs[0].key != own_key_) {
      // Our key is gone: our lease ended while we waited (this process was
      // stopped, or cut off). Back to the end of the queue.
      PIDLOCK_LOG(warning) << "etcd lock \"" << address_.text << "\": our place in the queue (lease "
                           << keeper_->lease_id() << ") was lost; queueing again";
      drop_lease();
      return Step::kAgain;
    }
    if (kvs.size() == 1) {
      if (Clock::now() < keeper_->give_up_at()) return Step::kAcquired;
      drop_lease();  // first, but our lease is unconfirmed: not safe to hold
      return Step::kAgain;
    }
    predecessor = &kvs[1];
  } else if (p.status != Reply::Status::kUnreachable) {
    return reply_failure(p, "read etcd lock queue", failure, held);
  }
  switch (wait_turn(predecessor, p.ok() ? header_revision(p.body) + 1 : 0)) {
    case Turn::kChanged:
      return Step::kAgain;
    case Turn::kLeaseLost:
      PIDLOCK_LOG(warning) << "etcd lock \"" << address_.text << "\": could not keep lease "
                           << keeper_->lease_id() << " of our place in the queue alive; queueing again";
      drop_lease();
      return Step::kAgain;
    case Turn::kCancelled:
      drop_lease();
      *failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
      return Step::kFailed;
    case Turn::kTimeout:
      break;
  }
  drop_lease();
  Reply h = client_.call("/v3/kv/range", holder_request(address_.key), call_deadline());
  if (!h.ok()) {
    *held = unknown_inspection(address_, h.message);
  } else if (std::vector<KeyValue> holder = range_kvs(h.body); !holder.empty()) {
    *held = holder_inspection(client_, holder[0], int_field(h.body, "count"), self_);
  } else {
    *held = free_inspection(address_);  // freed just as we gave up
  }
  *failure = pidlock_failure(errc::held, "acquire");
  return Step::kFailed;
}

std::optional<Grant> Acquirer::run(Failure* failure, Inspection* held) {
  for (;;) {
    if (options_.canceller && options_.canceller->cancelled()) {
      *failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
      return std::nullopt;
    }
    Step step = Step::kUnreachable;
    if (!clear_orphans()) {
      *held = unknown_inspection(address_, "an earlier attempt's lease could not be revoked yet");
    } else {
      step = waits_ ? take_turn(failure, held) : try_once(failure, held);
    }
    switch (step) {
      case Step::kAcquired: {
        Grant grant = make_grant(static_cast<std::uint64_t>(own_revision_));
        keeper_.reset();  // the lease is the grant's now: not ours to revoke
        return grant;
      }
      case Step::kFailed:
        return std::nullopt;
      case Step::kAgain:
        continue;
      case Step::kHeld:
      case Step::kUnreachable:
        break;
    }
    if (!waits_ || past_deadline()) {
      *failure = pidlock_failure(errc::held, "acquire");
      return std::nullopt;
    }
    // Unreachable while waiting (without a queue place to keep alive):
    // try again after a while.
    const int cancel_fd = options_.canceller ? options_.canceller->native_handle() : -1;
    Clock::duration pause = retry_;
    if (deadline_) pause = std::min(pause, *deadline_ - Clock::now());
    if (sleep_until({}, cancel_fd, std::max(pause, Clock::duration::zero())) == Wake::kCancelled) {
      *failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
      return std::nullopt;
    }
  }
}

}  // namespace pidlock::detail::etcd
