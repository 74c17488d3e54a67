// etcd auth tokens, shared by every Client of one process that talks to the
// same cluster as the same user. Authenticating is a raft write (etcd
// replicates the token to every member), so a process does it once, not
// once per connection; the token is dropped when etcd says it expired.
//
// Thread-safe.
#ifndef PIDLOCK_ETCD_AUTH_TOKENS_HPP
#define PIDLOCK_ETCD_AUTH_TOKENS_HPP

#include "etcd/address.hpp"

#include <string>

namespace pidlock::detail::etcd {

// The token cached for `cluster`'s members and user; "" if none.
std::string cached_token(const Cluster& cluster);
void cache_token(const Cluster& cluster, const std::string& token);
// Forgets `token` if it is still the one cached.
void forget_token(const Cluster& cluster, const std::string& token);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_AUTH_TOKENS_HPP
