#include "etcd/verdicts.hpp"

#include <algorithm>

namespace pidlock::detail::etcd {

namespace {

bool is_this_process(const HolderRecord& record, const SelfIdentity& self) {
  return record.pid == self.pid && record.host == self.host && record.boot_id == self.boot_id &&
         (!record.process_start_ticks || *record.process_start_ticks == self.start_ticks);
}

std::string waiting_note(std::int64_t contenders) {
  if (contenders <= 1) return {};
  return "; " + std::to_string(contenders - 1) + (contenders == 2 ? " contender waits" : " contenders wait");
}

}  // namespace

Inspection free_inspection(const Address& address) {
  Inspection i;
  i.verdict = Verdict::kFree;
  i.reason = Reason::kNoLockFile;
  i.detail = "no key under " + address.key + "/ in etcd";
  return i;
}

Inspection unknown_inspection(const Address& address, const std::string& problem) {
  Inspection i;
  i.verdict = Verdict::kUnknown;
  i.reason = Reason::kProbeFailed;
  i.detail = "no etcd member answered (" + address.cluster.describe() + "): " + problem +
             "; a lock that cannot be seen counts as held";
  return i;
}

bool written_by(const std::string& value, const SelfIdentity& self) {
  ParsedRecord parsed = parse_record(value);
  return parsed.record && is_this_process(*parsed.record, self);
}

Inspection holder_inspection(Client& client, const KeyValue& holder, std::int64_t contenders,
                             const SelfIdentity& self) {
  Inspection i;
  ParsedRecord parsed = parse_record(holder.value);
  i.holder = parsed.record;
  std::int64_t ttl = 0;
  if (holder.lease != 0) {
    Reply r = client.call("/v3/lease/timetolive", Json{{"ID", std::to_string(holder.lease)}});
    if (r.ok()) ttl = std::max<std::int64_t>(0, int_field(r.body, "TTL"));
  }
  i.lease = LeaseInfo{holder.lease, ttl, static_cast<std::uint64_t>(holder.create_revision)};
  const std::string evidence = "lease " + std::to_string(holder.lease) + " (ttl " + std::to_string(ttl) +
                               " s, fencing token " + std::to_string(holder.create_revision) + ")" +
                               waiting_note(contenders);
  if (holder.lease == 0) {
    // Written by something other than a lock recipe (etcdctl put): no lease
    // will ever end it, and nothing else shows whether its writer lives.
    i.verdict = Verdict::kUnknown;
    i.reason = Reason::kProbeFailed;
    i.detail = "the key " + holder.key + " exists without a lease, so nothing shows whether its holder lives; " +
               "remove it by hand (etcdctl del " + holder.key + ") if it is a leftover";
  } else if (!parsed.record) {
    i.verdict = Verdict::kHeld;
    i.reason = Reason::kLeaseAlive;
    i.detail = "held under " + evidence + " by a holder that keeps no pidlock record (etcd's lock recipe, " +
               "e.g. etcdctl lock; key " + holder.key + ")";
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

}  // namespace pidlock::detail::etcd
