// The address of a lock in etcd:
//
//   etcd://ENDPOINT[,ENDPOINT...]/prefix/name[?OPTION[&OPTION...]]
//   ENDPOINT = [http://|https://]HOST:PORT
//   OPTION   = ttl=SECONDS | cacert=FILE | cert=FILE | key=FILE | user=NAME
//
// The endpoints are client URLs of members of one etcd cluster. "/prefix/name"
// names the lock; its keys live below "/prefix/name/", laid out as etcd's own
// lock recipe lays them out (see lock_queue.hpp), so that `etcdctl lock
// /prefix/name` and pidlock exclude each other. `ttl` is the lease's time to
// live in seconds (default 10): how long after the holder's death (or
// freeze, or network partition) the lock becomes free.
//
// TLS and authentication settings come from the address, else from the
// environment under etcdctl's names: ETCDCTL_CACERT, ETCDCTL_CERT,
// ETCDCTL_KEY, ETCDCTL_USER ("name" or "name:password"), ETCDCTL_PASSWORD.
// A password is never taken from the address: addresses show up in process
// listings, logs and the environment of `pidlock run`'s job.
#ifndef PIDLOCK_ETCD_ADDRESS_HPP
#define PIDLOCK_ETCD_ADDRESS_HPP

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace pidlock::detail::etcd {

inline constexpr std::chrono::seconds kDefaultTtl{10};
// etcd refuses leases longer than this (its MaxLeaseTTL: 9 000 000 000 s);
// a lock nobody can reclaim for a year is a mistake, so we stop there.
inline constexpr std::chrono::seconds kMaxTtl{365 * 24 * 3600};

struct Endpoint {
  std::string host_port;  // "127.0.0.1:2379", "[::1]:2379": for messages
  bool tls = false;       // https://
  std::string url() const { return (tls ? "https://" : "http://") + host_port; }
};

// How to reach and authenticate to the members.
struct Security {
  std::string ca_file;    // trusted CA certificates (PEM); empty: the system's
  std::string cert_file;  // client certificate (PEM), for client-cert-auth
  std::string key_file;   // its private key
  std::string user;       // etcd user; empty: no authentication
  std::string password;
};

// The members of one cluster and how to talk to them.
struct Cluster {
  std::vector<Endpoint> endpoints;
  Security security;
  // A cluster of plain-HTTP members without authentication ("host:port").
  static Cluster plain(const std::vector<std::string>& host_ports);
  // "127.0.0.1:2379,https://db2:2379", for messages.
  std::string describe() const;
};

struct Address {
  Cluster cluster;
  std::string key;  // "/prefix/name": the lock's name
  std::chrono::seconds ttl = kDefaultTtl;
  std::string text;  // as given, for messages
};

// Looks up an environment variable (::getenv, or a stand-in in tests).
using GetEnv = std::function<const char*(const char*)>;

// Parses `text`; on failure returns false with *problem saying what is
// wrong in words a user can act on. Settings missing from the address are
// taken from the environment (`getenv`); TLS files named anywhere must be
// readable.
bool parse_address(const std::string& text, Address* out, std::string* problem, const GetEnv& getenv = {});

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_ADDRESS_HPP
