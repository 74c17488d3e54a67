// Verdicts on an etcd lock, from what etcd shows of its queue (lock_queue.hpp).
//
// Policy: the lease, not the pid, is the evidence of life, and etcd deletes
// a holder's key when its lease ends; so an etcd lock is held or free,
// never stale. The pid in a record is evidence for people only and is
// never probed with kill(): the holder may run on another host (G3). A
// holder that keeps no pidlock record (`etcdctl lock`) is held all the
// same. When no member answers, the verdict is unknown, which counts as
// held.
#ifndef PIDLOCK_ETCD_VERDICTS_HPP
#define PIDLOCK_ETCD_VERDICTS_HPP

#include <pidlock/inspection.hpp>

#include "etcd/address.hpp"
#include "etcd/client.hpp"
#include "core/identity.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace pidlock::detail::etcd {

Inspection free_inspection(const Address& address);
// No member answered: `problem` says what each one did.
Inspection unknown_inspection(const Address& address, const std::string& problem);

// The holder's key (the queue's first), with `contenders` keys in the queue
// in all. Asks etcd for the time left on the holder's lease.
Inspection holder_inspection(Client& client, const KeyValue& holder, std::int64_t contenders,
                             const SelfIdentity& self);

// Is the record in `value` one this process wrote?
bool written_by(const std::string& value, const SelfIdentity& self);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_VERDICTS_HPP
