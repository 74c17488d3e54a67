// Real etcd servers for tests and the benchmark: a cluster of members on
// 127.0.0.1, each a child process (`etcd` from PATH) with its own client
// and peer port and a data folder under a fresh temporary folder. Only
// loopback traffic. Members can be frozen (SIGSTOP), killed and restarted
// on the same ports and data. Built only with PIDLOCK_WITH_ETCD.
#ifndef PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP
#define PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP

#include "support/child.hpp"
#include "support/temp_dir.hpp"

#include "etcd/address.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace pidlock_test {

struct ClusterOptions {
  // Non-empty: a folder of certificates (tests/etcd/certificates.hpp); the
  // members serve https with server.pem, trust ca.pem and require client
  // certificates.
  std::string cert_dir;
  std::vector<std::string> extra_args;  // more etcd flags for every member
};

class EtcdCluster {
 public:
  // Does not start anything; see start().
  explicit EtcdCluster(int members = 3, ClusterOptions options = {});
  // Kills every member still running (frozen ones too) and removes the
  // data folders.
  ~EtcdCluster() = default;
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts the members and waits until every one answers and they agree on
  // a leader. On failure returns false with *problem (and the members'
  // logs).
  bool start(std::string* problem, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  int size() const { return static_cast<int>(members_.size()); }
  bool tls() const { return !options_.cert_dir.empty(); }
  // A member's client URL as an address lists it: "127.0.0.1:C", or
  // "https://127.0.0.1:C" for a TLS cluster.
  std::string endpoint(int member) const;
  // Every member's, comma-separated, optionally with member `first` moved
  // to the front.
  std::string endpoints(int first = -1) const;
  int client_port(int member) const { return members_[member].client_port; }
  int peer_port(int member) const { return members_[member].peer_port; }
  // "etcd://<endpoints>/pidlock-test/<name>?ttl=<ttl>" (no ttl when 0),
  // with the TLS files for a TLS cluster.
  std::string address(const std::string& name, int ttl_seconds = 0, int first = -1) const;
  // The same, through other endpoints (fault proxies, say).
  std::string address_via(const std::string& endpoints, const std::string& name, int ttl_seconds) const;
  // The members (all, or one) as the library's client sees them.
  pidlock::detail::etcd::Cluster client_config(int member = -1) const;
  // "etcdctl --endpoints=... [TLS flags]" for the running members.
  std::vector<std::string> etcdctl() const;

  // The index of the current leader, by asking the members that run
  // (/v3/maintenance/status); -1 if none knows.
  int leader() const;
  void kill_member(int i);  // SIGKILL and reap
  void kill_all();
  void stop_member(int i);      // SIGSTOP: frozen, its sockets still open
  void continue_member(int i);  // SIGCONT
  // Starts a killed member again, on its ports and data.
  bool restart_member(int i, std::string* problem);
  // Waits until every running member answers and they agree on a leader.
  bool wait_healthy(std::string* problem, std::chrono::milliseconds timeout);
  // Raft proposals committed so far (etcd_server_proposals_committed_total
  // of a running member): the cluster's writes. -1 if no member answers.
  long long proposals_committed() const;
  // The members' log files, concatenated (for failure messages).
  std::string logs() const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    Child process;
    bool stopped = false;
    std::string log;
    std::vector<std::string> args;
  };
  bool spawn(Member& m, std::string* problem);
  // Started and not killed (it may have died by itself, or be frozen).
  bool started(int i) const { return !members_[i].process.reaped(); }
  // Started, not killed and not frozen: it may answer.
  bool answering(int i) const { return started(i) && !members_[i].stopped; }

  ClusterOptions options_;
  // Members are declared after the folder: they die before it is removed.
  TempDir dir_;
  std::vector<Member> members_;
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP
