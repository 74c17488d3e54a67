#include "support/etcd_cluster.hpp"

#include "support/files.hpp"

#include "etcd/client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace pidlock_test {

namespace etcd = pidlock::detail::etcd;

namespace {

// Free loopback ports, found by binding to port 0. All sockets stay open
// until every port is chosen, so the ports are distinct; a race with
// another program taking one before etcd binds it is possible but rare, and
// start() then fails with the member's log.
std::vector<int> free_ports(int count) {
  std::vector<int> fds, ports;
  for (int i = 0; i < count; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ports.push_back(0);
    } else {
      ports.push_back(ntohs(addr.sin_port));
    }
    fds.push_back(fd);
  }
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  return ports;
}

}  // namespace

EtcdCluster::EtcdCluster(int members) {
  std::vector<int> ports = free_ports(2 * members);
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = ports[2 * i];
    m.peer_port = ports[2 * i + 1];
    m.log = dir_ / (m.name + ".log");
    members_.push_back(std::move(m));
  }
}

std::string EtcdCluster::endpoint(int i) const {
  return "127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::string EtcdCluster::endpoints(int first) const {
  std::string out;
  if (first >= 0) out = endpoint(first);
  for (int i = 0; i < size(); ++i) {
    if (i == first) continue;
    if (!out.empty()) out += ',';
    out += endpoint(i);
  }
  return out;
}

std::string EtcdCluster::address(const std::string& name, int ttl, int first) const {
  std::string a = "etcd://" + endpoints(first) + "/pidlock-test/" + name;
  if (ttl > 0) a += "?ttl=" + std::to_string(ttl);
  return a;
}

bool EtcdCluster::start(std::string* problem, std::chrono::milliseconds timeout) {
  if (dir_.path().empty()) {
    *problem = "cannot create a temporary folder";
    return false;
  }
  std::string initial;
  for (const auto& m : members_) {
    if (m.client_port == 0 || m.peer_port == 0) {
      *problem = "no free loopback port";
      return false;
    }
    if (!initial.empty()) initial += ',';
    initial += m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
  }
  const std::string token = "pidlock-test-" + std::to_string(::getpid()) + "-" + dir_.path().substr(dir_.path().size() - 6);
  for (auto& m : members_) {
    const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> args = {
        "etcd",
        "--name", m.name,
        "--data-dir", dir_ / m.name,
        "--listen-client-urls", client,
        "--advertise-client-urls", client,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", initial,
        "--initial-cluster-token", token,
        "--initial-cluster-state", "new",
        // Fast elections keep the leader-loss test short; etcd's minimum
        // lease ttl is 1.5 election timeouts, well below the tests' 2-3 s.
        "--heartbeat-interval", "50",
        "--election-timeout", "500",
        "--logger", "zap",
        "--log-level", "warn",
    };
    Stdio stdio;
    stdio.output_file = stdio.error_file = m.log;
    stdio.die_with_test = true;  // even when the test is killed by a timeout
    m.process = Child::spawn(args, stdio);
    if (m.process.pid() <= 0) {
      *problem = "cannot start etcd member " + m.name;
      return false;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto& m : members_) {
      if (!m.process.running()) {
        *problem = "etcd member " + m.name + " exited at start-up (is etcd in PATH?)\n" + logs();
        return false;
      }
    }
    if (leader() >= 0) {
      // Every member must answer too, not just agree.
      bool all = true;
      for (int i = 0; i < size() && all; ++i) {
        etcd::Client c({endpoint(i)}, std::chrono::milliseconds(500));
        all = c.call("/v3/kv/range", etcd::Json{{"key", "AA=="}}).ok();
      }
      if (all) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *problem = "the etcd cluster did not become healthy\n" + logs();
  return false;
}

int EtcdCluster::leader() const {
  for (int i = 0; i < size(); ++i) {
    if (!started(i)) continue;
    etcd::Client c({endpoint(i)}, std::chrono::milliseconds(500));
    etcd::Reply r = c.call("/v3/maintenance/status", etcd::Json::object());
    if (!r.ok()) continue;
    // Member ids are uint64 (often above INT64_MAX): compared as the
    // decimal strings the gateway sends.
    std::string leader = r.body.value("leader", std::string());
    if (leader.empty() || leader == "0") continue;
    // Find the member whose own id is the leader's.
    for (int j = 0; j < size(); ++j) {
      if (!started(j)) continue;
      etcd::Client cj({endpoint(j)}, std::chrono::milliseconds(500));
      etcd::Reply rj = cj.call("/v3/maintenance/status", etcd::Json::object());
      if (rj.ok() && rj.body["header"].value("member_id", std::string()) == leader) return j;
    }
  }
  return -1;
}

void EtcdCluster::kill_member(int i) {
  members_[i].process.kill(SIGKILL);
  members_[i].process.wait();
}

void EtcdCluster::kill_all() {
  for (int i = 0; i < size(); ++i) kill_member(i);
}

std::string EtcdCluster::logs() const {
  std::string out;
  for (const auto& m : members_) out += "--- " + m.name + " (" + m.log + ")\n" + try_read_file(m.log).value_or("");
  return out;
}

}  // namespace pidlock_test
