// etcd's own lock recipe (clientv3 concurrency.Mutex, which `etcdctl lock`
// uses), spelled as gateway requests.
//
// The lock NAME is the key prefix "NAME/". Each contender puts its own key,
// "NAME/<its lease id in hex>", under its lease; the key with the smallest
// create revision holds the lock, and its create revision is the fencing
// token. Everyone else waits in create-revision order, each watching only
// the key just before its own, so a release (one write: the holder's lease
// revoked, which deletes its key) wakes exactly one waiter, which then needs
// one read to see that it is first. First come, first served, and no herd.
//
// Successive holders' tokens grow: the next holder's key is the smallest
// left after the previous one's (the smallest of all) went, and keys
// created later have larger revisions.
//
// Because the layout is etcd's, `etcdctl lock NAME` and pidlock on
// etcd://.../NAME queue in the same line and exclude each other. pidlock
// keeps its holder record as the value of its key (etcdctl leaves its value
// empty and never reads it).
#ifndef PIDLOCK_ETCD_LOCK_QUEUE_HPP
#define PIDLOCK_ETCD_LOCK_QUEUE_HPP

#include "etcd/reply.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace pidlock::detail::etcd {

// "NAME/": every key of the lock starts with it.
std::string lock_prefix(const std::string& name);
// A contender's key: the prefix and its lease id in lower-case hex, as
// concurrency.Mutex writes it.
std::string contender_key(const std::string& name, std::int64_t lease);

// A RangeRequest for the holder: the key of the smallest create revision
// under the prefix (its "count" says how many keys there are in all).
Json holder_request(const std::string& name);

// A try without queueing: if no key exists under the prefix, put ours;
// otherwise read the holder. One write on success, none on failure.
Json try_request(const std::string& name, std::int64_t lease, const std::string& value);

// Joins the queue: puts our key unless it exists (a retried request), and
// reads the holder either way.
Json enqueue_request(const std::string& name, std::int64_t lease, const std::string& value);

// Our key and the one just before it: the keys up to our create revision,
// newest first, two of them.
Json position_request(const std::string& name, std::int64_t own_revision);

// The n-th response of a TxnResponse, as a RangeResponse (or null).
const Json* txn_range(const Json& txn_response, std::size_t n);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_LOCK_QUEUE_HPP
