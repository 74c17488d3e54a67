// The etcd backend behind LockManager (PIDLOCK_WITH_ETCD=ON): acquire,
// inspect and wait for locks at "etcd://..." addresses. See docs/etcd.md.
//
// A lock is one key. Acquiring grants a lease and, in one transaction,
// creates the key under it if, and only if, the key does not exist
// (create_revision == 0). etcd serialises transactions through raft, so at
// most one contender's transaction succeeds: exclusion (G1) is etcd's
// linearizability, not ours. The key's create revision is the fencing
// token; it grows with each new holder because revisions only grow.
//
// Liveness is the lease: a holder that dies, freezes or is cut off stops
// renewing it, and etcd deletes the key when it expires. Nothing is ever
// judged stale by pid evidence: the holder may live on another host, where
// kill() proves nothing (G3). When no member answers, the verdict is
// unknown, which counts as held.
#include <pidlock/canceller.hpp>

#include "etcd/address.hpp"
#include "etcd/base64.hpp"
#include "etcd/client.hpp"
#include "etcd/etcd_lock.hpp"
#include "core/judge.hpp"
#include "core/log.hpp"
#include "posix/notifier.hpp"
#include "store.hpp"

#include <boost/filesystem/operations.hpp>

#include <algorithm>
#include <vector>

namespace pidlock::detail {

using namespace etcd;

namespace {

constexpr std::chrono::milliseconds kWatchOpenTimeout{1000};
// While no member answers, a waiter asks again this often (bounded by the
// caller's recheck interval).
constexpr std::chrono::milliseconds kUnreachableRetry{500};

Failure bad_address(const std::string& problem) {
  return pidlock_failure(errc::invalid_argument, "parse etcd lock address", problem);
}

Inspection free_inspection(const Address& address) {
  Inspection i;
  i.verdict = Verdict::kFree;
  i.reason = Reason::kNoLockFile;
  i.detail = "the key " + address.key + " does not exist in etcd";
  return i;
}

Inspection unknown_inspection(const Address& address, const std::string& problem) {
  Inspection i;
  i.verdict = Verdict::kUnknown;
  i.reason = Reason::kProbeFailed;
  i.detail = "no etcd member answered (" + join_endpoints(address.endpoints) + "): " + problem +
             "; a lock that cannot be seen counts as held";
  return i;
}

bool is_this_process(const HolderRecord& record, const SelfIdentity& self) {
  return record.pid == self.pid && record.host == self.host && record.boot_id == self.boot_id &&
         (!record.process_start_ticks || *record.process_start_ticks == self.start_ticks);
}

// The verdict on an existing key. The lease, not the pid, is the evidence
// of life: etcd deletes the key when the lease ends.
Inspection held_inspection(Client& client, const KeyValue& kv, const SelfIdentity& self) {
  Inspection i;
  ParsedRecord parsed = parse_record(kv.value);
  i.holder = parsed.record;
  std::int64_t ttl = 0;
  if (kv.lease != 0) {
    Reply r = client.call("/v3/lease/timetolive", Json{{"ID", std::to_string(kv.lease)}});
    if (r.ok()) ttl = std::max<std::int64_t>(0, int_field(r.body, "TTL"));
  }
  i.lease = LeaseInfo{kv.lease, ttl, static_cast<std::uint64_t>(kv.create_revision)};
  const std::string evidence = "lease " + std::to_string(kv.lease) + " (ttl " + std::to_string(ttl) +
                               " s, fencing token " + std::to_string(kv.create_revision) + ")";
  if (kv.lease == 0) {
    // Written by something other than pidlock (etcdctl put): no lease will
    // ever end it, and we have no other evidence.
    i.verdict = Verdict::kUnknown;
    i.reason = Reason::kProbeFailed;
    i.detail = "the key exists without a lease, so nothing shows whether its holder lives; remove it by hand "
               "(etcdctl del " + kv.key + ") if it is a leftover";
  } else if (!parsed.record) {
    i.verdict = Verdict::kUnknown;
    i.reason = Reason::kUnreadable;
    i.detail = "held under " + evidence + " by a holder whose value is not a pidlock record (" + parsed.problem + ")";
  } else if (is_this_process(*parsed.record, self)) {
    i.verdict = Verdict::kHeld;
    i.reason = Reason::kHeldByThisProcess;
    i.detail = "this process holds the lock under " + evidence;
  } else {
    i.verdict = Verdict::kHeld;
    i.reason = Reason::kPidAlive;
    i.detail = "held by pid " + std::to_string(parsed.record->pid) + " on host " +
               (parsed.record->host.empty() ? std::string("(unknown)") : parsed.record->host) + " under " + evidence;
  }
  return i;
}

// Best effort: a lease we fail to revoke expires by itself within its ttl,
// taking with it any key a timed-out transaction may have attached. True
// once the lease is gone (revoked, or not found).
bool revoke_quietly(Client& client, std::int64_t lease) {
  Reply r = client.call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}});
  return r.ok() || (r.status == Reply::Status::kRefused && r.grpc_code == kGrpcNotFound);
}

// One attempt at the acquire transaction.
struct Attempt {
  enum class Outcome { kAcquired, kHeld, kUnreachable, kFailed } outcome = Outcome::kFailed;
  Grant grant;
  Inspection inspection;   // kHeld, kUnreachable
  std::int64_t revision = 0;  // kHeld: the store revision the verdict is from
  Failure failure;         // kFailed
  // A lease whose transaction's outcome is unknown (no member answered) and
  // whose revoke failed: it may carry a key of ours until it expires.
  std::int64_t orphan_lease = 0;
};

Attempt try_acquire(Client& client, const Address& address, const std::string& value, const SelfIdentity& self) {
  Attempt a;
  const Clock::time_point sent = Clock::now();
  Reply g = client.call("/v3/lease/grant", Json{{"TTL", std::to_string(address.ttl.count())}});
  if (g.status == Reply::Status::kUnreachable) {
    a.outcome = Attempt::Outcome::kUnreachable;
    a.inspection = unknown_inspection(address, g.message);
    return a;
  }
  if (g.status == Reply::Status::kRefused) {
    a.failure = Failure{std::make_error_code(std::errc::io_error), "grant etcd lease", g.message};
    return a;
  }
  const std::int64_t lease = int_field(g.body, "ID");
  const std::int64_t granted = int_field(g.body, "TTL");
  if (lease == 0 || granted <= 0) {
    a.failure = Failure{std::make_error_code(std::errc::protocol_error), "grant etcd lease",
                        "etcd answered without a lease id or ttl"};
    return a;
  }
  const std::string key = base64_encode(address.key);
  Json txn = {
      {"compare", Json::array({Json{{"target", "CREATE"}, {"key", key}, {"result", "EQUAL"},
                                    {"create_revision", "0"}}})},
      {"success", Json::array({Json{{"request_put",
                                     {{"key", key}, {"value", base64_encode(value)}, {"lease", std::to_string(lease)}}}}})},
      {"failure", Json::array({Json{{"request_range", {{"key", key}}}}})}};
  Reply t = client.call("/v3/kv/txn", txn);
  if (t.status != Reply::Status::kOk) {
    if (!revoke_quietly(client, lease)) a.orphan_lease = lease;
    if (t.status == Reply::Status::kUnreachable) {
      a.outcome = Attempt::Outcome::kUnreachable;
      a.inspection = unknown_inspection(address, t.message);
    } else {
      a.failure = Failure{std::make_error_code(std::errc::io_error), "create etcd key", t.message};
    }
    return a;
  }
  a.grant.address = address;
  a.grant.lease_id = lease;
  a.grant.ttl = std::chrono::seconds(granted);
  a.grant.lease_deadline = sent + std::chrono::seconds(granted);
  a.grant.preferred = client.preferred();
  if (t.body.value("succeeded", false)) {
    // The put is the transaction's only write, so the key's create revision
    // is the revision the transaction produced.
    a.grant.token = static_cast<std::uint64_t>(int_field(t.body["header"], "revision"));
    a.outcome = Attempt::Outcome::kAcquired;
    return a;
  }
  std::optional<KeyValue> kv;
  if (auto rs = t.body.find("responses"); rs != t.body.end() && rs->is_array() && !rs->empty())
    if (auto rr = (*rs)[0].find("response_range"); rr != (*rs)[0].end()) kv = first_kv(*rr);
  if (kv && kv->lease == lease) {
    // Our own key: a member timed out on an earlier try of this transaction
    // after committing it, and the client retried on another member.
    a.grant.token = static_cast<std::uint64_t>(kv->create_revision);
    a.outcome = Attempt::Outcome::kAcquired;
    return a;
  }
  revoke_quietly(client, lease);
  a.revision = int_field(t.body["header"], "revision");
  if (!kv) {
    // Cannot happen inside one transaction; treat it as a change to look at.
    a.outcome = Attempt::Outcome::kHeld;
    a.inspection = free_inspection(address);
    return a;
  }
  a.outcome = Attempt::Outcome::kHeld;
  a.inspection = held_inspection(client, *kv, self);
  return a;
}

enum class WaitEnd { kChanged, kTimeout, kCancelled };

// Sleeps until the key at `address` may have become free: a delete event on
// a watch from `from_revision` (or, without a reachable member, a retry
// interval), the deadline, or the canceller.
WaitEnd wait_for_change(const Address& address, std::size_t preferred, std::int64_t from_revision,
                        std::optional<Clock::time_point> deadline, const Canceller* canceller,
                        std::chrono::milliseconds retry) {
  const int cancel_fd = canceller ? canceller->native_handle() : -1;
  auto sleep_retry = [&]() {
    Clock::duration limit = retry;
    bool deadline_first = false;
    if (deadline) {
      auto left = *deadline - Clock::now();
      if (left <= Clock::duration::zero()) return WaitEnd::kTimeout;
      if (left < limit) {
        limit = left;
        deadline_first = true;
      }
    }
    switch (sleep_until({}, cancel_fd, limit)) {
      case Wake::kCancelled: return WaitEnd::kCancelled;
      case Wake::kTimeout: return deadline_first ? WaitEnd::kTimeout : WaitEnd::kChanged;
      default: return WaitEnd::kChanged;
    }
  };
  if (from_revision <= 0) return sleep_retry();
  WatchStream watch(address.endpoints, preferred);
  std::string problem;
  if (!watch.open(address.key, from_revision, kWatchOpenTimeout, &problem)) return sleep_retry();
  std::vector<WatchEvent> events;
  for (;;) {
    switch (watch.wait(deadline, cancel_fd, &events)) {
      case WatchStream::Result::kEvents:
        for (const auto& ev : events)
          if (ev.deleted) return WaitEnd::kChanged;
        break;  // the holder rewrote its record: still held
      case WatchStream::Result::kTimeout:
        return WaitEnd::kTimeout;
      case WatchStream::Result::kCancelled:
        return WaitEnd::kCancelled;
      case WatchStream::Result::kBroken:
        if (!watch.reopen(kWatchOpenTimeout, &problem)) return WaitEnd::kChanged;  // look again
        break;
      case WatchStream::Result::kCompacted:
        return WaitEnd::kChanged;
    }
  }
}

}  // namespace

std::shared_ptr<HeldLock> remote_acquire(const std::string& text, const AcquireOptions& options, Failure& failure,
                                         Inspection& held) {
  Address address;
  std::string problem;
  if (!parse_address(text, &address, &problem)) {
    failure = bad_address(problem);
    return nullptr;
  }
  const SelfIdentity self = self_identity();
  HolderRecord record = make_record(self, self.pid);
  record.status = options.status;
  if (!options.data_directory.empty())
    record.data_directory = boost::filesystem::absolute(options.data_directory).lexically_normal().string();
  if (record.data_directory.find('\n') != std::string::npos) {
    failure = pidlock_failure(errc::invalid_argument, "acquire", "the data directory contains a newline");
    return nullptr;
  }
  const std::string value = format_record(record);

  Client client(address.endpoints);
  const bool waits = options.wait || options.timeout.has_value();
  std::optional<Clock::time_point> deadline;
  if (options.timeout) deadline = Clock::now() + *options.timeout;
  const auto retry = std::min<std::chrono::milliseconds>(options.recheck_interval, kUnreachableRetry);
  // Leases of attempts whose outcome is unknown. Until they are revoked, a
  // key one of them carries would look like a lock this process already
  // holds, so they go before the next attempt.
  std::vector<std::int64_t> orphans;
  for (;;) {
    if (options.canceller && options.canceller->cancelled()) {
      failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
      return nullptr;
    }
    orphans.erase(std::remove_if(orphans.begin(), orphans.end(),
                                 [&](std::int64_t lease) { return revoke_quietly(client, lease); }),
                  orphans.end());
    if (!orphans.empty()) {
      Attempt unknown;
      unknown.outcome = Attempt::Outcome::kUnreachable;
      unknown.inspection = unknown_inspection(address, "an earlier attempt's lease could not be revoked yet");
      held = unknown.inspection;
      if (!waits || (deadline && Clock::now() >= *deadline)) {
        failure = pidlock_failure(errc::held, "acquire");
        return nullptr;
      }
      switch (wait_for_change(address, client.preferred(), 0, deadline, options.canceller, retry)) {
        case WaitEnd::kChanged: continue;
        case WaitEnd::kTimeout:
          failure = pidlock_failure(errc::held, "acquire");
          return nullptr;
        case WaitEnd::kCancelled:
          failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
          return nullptr;
      }
    }
    Attempt a = try_acquire(client, address, value, self);
    if (a.orphan_lease != 0) orphans.push_back(a.orphan_lease);
    switch (a.outcome) {
      case Attempt::Outcome::kAcquired: {
        const std::int64_t lease = a.grant.lease_id;
        const std::uint64_t token = a.grant.token;
        const auto ttl = a.grant.ttl;
        auto state = std::make_shared<EtcdLock>(std::move(a.grant), text, record);
        PIDLOCK_LOG(info) << "acquired etcd lock \"" << text << "\" (pid " << self.pid << ", lease " << lease
                          << ", ttl " << ttl.count() << " s, fencing token " << token << ")";
        return state;
      }
      case Attempt::Outcome::kFailed:
        failure = a.failure;
        return nullptr;
      case Attempt::Outcome::kHeld:
        if (a.inspection.reason == Reason::kHeldByThisProcess) {
          failure = pidlock_failure(errc::already_held_by_this_process, "acquire",
                                    "release the existing handle first; a second acquire never breaks or drops it");
          return nullptr;
        }
        break;
      case Attempt::Outcome::kUnreachable:
        break;
    }
    if (a.inspection.verdict == Verdict::kFree) continue;
    held = a.inspection;
    if (!waits || (deadline && Clock::now() >= *deadline)) {
      failure = pidlock_failure(errc::held, "acquire");
      return nullptr;
    }
    std::int64_t from = a.outcome == Attempt::Outcome::kHeld ? a.revision + 1 : 0;
    switch (wait_for_change(address, client.preferred(), from, deadline, options.canceller, retry)) {
      case WaitEnd::kChanged: continue;
      case WaitEnd::kTimeout:
        failure = pidlock_failure(errc::held, "acquire");
        return nullptr;
      case WaitEnd::kCancelled:
        failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
        return nullptr;
    }
  }
}

namespace {

// The verdict on the key as it is now; *revision is the store revision it
// is from (0 when etcd could not be reached).
Inspection look(Client& client, const Address& address, Failure& failure, std::int64_t* revision) {
  *revision = 0;
  Reply r = client.call("/v3/kv/range", Json{{"key", base64_encode(address.key)}});
  if (r.status == Reply::Status::kUnreachable) return unknown_inspection(address, r.message);
  if (r.status == Reply::Status::kRefused) {
    failure = Failure{std::make_error_code(std::errc::io_error), "read etcd key", r.message};
    return {};
  }
  *revision = int_field(r.body["header"], "revision");
  auto kv = first_kv(r.body);
  if (!kv) return free_inspection(address);
  return held_inspection(client, *kv, self_identity());
}

}  // namespace

Inspection remote_inspect(const std::string& text, const JudgeOptions&, Failure& failure) {
  Address address;
  std::string problem;
  if (!parse_address(text, &address, &problem)) {
    failure = bad_address(problem);
    return {};
  }
  Client client(address.endpoints);
  std::int64_t revision = 0;
  return look(client, address, failure, &revision);
}

Inspection remote_wait_until_free(const std::string& text, std::optional<std::chrono::milliseconds> timeout,
                                  const Canceller* canceller, Failure& failure) {
  Address address;
  std::string problem;
  if (!parse_address(text, &address, &problem)) {
    failure = bad_address(problem);
    return {};
  }
  Client client(address.endpoints);
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  for (;;) {
    if (canceller && canceller->cancelled()) {
      failure = pidlock_failure(errc::cancelled, "wait for etcd lock");
      return {};
    }
    std::int64_t revision = 0;
    Inspection insp = look(client, address, failure, &revision);
    if (failure || insp.verdict == Verdict::kFree) return insp;
    switch (wait_for_change(address, client.preferred(), revision > 0 ? revision + 1 : 0, deadline, canceller,
                            kUnreachableRetry)) {
      case WaitEnd::kChanged: continue;
      case WaitEnd::kTimeout:
        failure = pidlock_failure(errc::held, "wait for etcd lock", "timed out");
        return insp;
      case WaitEnd::kCancelled:
        failure = pidlock_failure(errc::cancelled, "wait for etcd lock");
        return insp;
    }
  }
}

namespace {

// The store behind "etcd://" addresses, over the operations above.
class EtcdStore final : public Store {
 public:
  std::shared_ptr<HeldLock> acquire(const boost::filesystem::path& address, const AcquireOptions& options,
                                    Failure& failure, Inspection& held) override {
    return remote_acquire(address.string(), options, failure, held);
  }
  Inspection inspect(const boost::filesystem::path& address, const JudgeOptions& options,
                     Failure& failure) override {
    return remote_inspect(address.string(), options, failure);
  }
  Inspection wait_until_free(const boost::filesystem::path& address, std::optional<std::chrono::milliseconds> timeout,
                             const Canceller* canceller, const JudgeOptions& /*options*/, Failure& failure) override {
    return remote_wait_until_free(address.string(), timeout, canceller, failure);
  }
  // A lease-based lock is never stale: it vanishes when its lease ends.
  BreakResult break_stale(const boost::filesystem::path& address, const JudgeOptions& options,
                          Failure& failure) override {
    BreakResult result;
    result.inspection = remote_inspect(address.string(), options, failure);
    return result;
  }
};

}  // namespace

Store& etcd_store() {
  static EtcdStore* store = new EtcdStore;  // never destroyed: used at exit
  return *store;
}

}  // namespace pidlock::detail
