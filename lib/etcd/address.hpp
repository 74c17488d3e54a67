// The address of a lock in etcd:
//
//   etcd://HOST:PORT[,HOST:PORT...]/prefix/name[?ttl=SECONDS]
//
// The endpoints are members of one etcd cluster (client URLs, plain HTTP);
// requests go to them in order, moving on when one cannot be reached. The
// path is the key, verbatim ("/prefix/name"). `ttl` is the lease's time to
// live in seconds (default 10): how long after the holder's death (or
// freeze, or network partition) the lock becomes free.
#ifndef PIDLOCK_ETCD_ADDRESS_HPP
#define PIDLOCK_ETCD_ADDRESS_HPP

#include <chrono>
#include <string>
#include <vector>

namespace pidlock::detail::etcd {

inline constexpr std::chrono::seconds kDefaultTtl{10};
// etcd refuses leases longer than this (its MaxLeaseTTL: 9 000 000 000 s);
// a lock nobody can reclaim for a year is a mistake, so we stop there.
inline constexpr std::chrono::seconds kMaxTtl{365 * 24 * 3600};

struct Address {
  std::vector<std::string> endpoints;  // "host:port", "[v6]:port"
  std::string key;                     // "/prefix/name"
  std::chrono::seconds ttl = kDefaultTtl;
  std::string text;                    // as given, for messages
};

// Parses `text`; on failure returns false with *problem saying what is
// wrong in words a user can act on.
bool parse_address(const std::string& text, Address* out, std::string* problem);

// "127.0.0.1:2379,127.0.0.1:22379", for messages.
std::string join_endpoints(const std::vector<std::string>& endpoints);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_ADDRESS_HPP
