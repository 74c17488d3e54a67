// Real etcd servers for tests and the benchmark: a cluster of members on
// 127.0.0.1, each a child process (`etcd` from PATH) with its own client
// and peer port and a data folder under a fresh temporary folder. Only
// loopback traffic. Built only with PIDLOCK_WITH_ETCD.
#ifndef PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP
#define PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP

#include "support/child.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace pidlock_test {

class EtcdCluster {
 public:
  // Does not start anything; see start().
  explicit EtcdCluster(int members = 3);
  // Kills every member still running and removes the data folders.
  ~EtcdCluster() = default;
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts the members and waits until every one answers and they agree on
  // a leader. On failure returns false with *problem (and the members'
  // logs).
  bool start(std::string* problem, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:C0,127.0.0.1:C1,..." (client endpoints), optionally with
  // member `first` moved to the front.
  std::string endpoints(int first = -1) const;
  std::string endpoint(int member) const;
  // "etcd://<endpoints>/pidlock-test/<name>?ttl=<ttl>" (no ttl when 0).
  std::string address(const std::string& name, int ttl_seconds = 0, int first = -1) const;

  // The index of the current leader, by asking the members that run
  // (/v3/maintenance/status); -1 if none knows.
  int leader() const;
  // SIGKILLs member `i` and reaps it.
  void kill_member(int i);
  void kill_all();
  // The members' log files, concatenated (for failure messages).
  std::string logs() const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    Child process;
    std::string log;
  };
  // Started and not killed (it may have died by itself).
  bool started(int i) const { return !members_[i].process.reaped(); }
  // Members are declared after the folder: they die before it is removed.
  TempDir dir_;
  std::vector<Member> members_;
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_ETCD_CLUSTER_HPP
