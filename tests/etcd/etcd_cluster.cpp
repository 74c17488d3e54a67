#include "etcd_cluster.hpp"

#include "etcd/client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace pidlock_etcd_test {

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

etcd::Clock::time_point soon() { return etcd::Clock::now() + std::chrono::milliseconds(500); }

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

EtcdCluster::EtcdCluster(int members) {
  char tmpl[] = "/tmp/pidlock-etcd-XXXXXX";
  if (::mkdtemp(tmpl)) dir_ = tmpl;
  std::vector<int> ports = free_ports(2 * members);
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = ports[2 * i];
    m.peer_port = ports[2 * i + 1];
    m.log = dir_ + "/" + m.name + ".log";
    members_.push_back(m);
  }
}

EtcdCluster::~EtcdCluster() {
  kill_all();
  if (!dir_.empty() && dir_.rfind("/tmp/pidlock-etcd-", 0) == 0) {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)::system(cmd.c_str());
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
  if (dir_.empty()) {
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
  const std::string token = "pidlock-test-" + std::to_string(::getpid()) + "-" + dir_.substr(dir_.size() - 6);
  for (auto& m : members_) {
    const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> args = {
        "etcd",
        "--name", m.name,
        "--data-dir", dir_ + "/" + m.name,
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
    pid_t pid = ::fork();
    if (pid < 0) {
      *problem = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      // Die with the test, even when it is killed by a timeout.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int log = ::open(m.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, 0);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp("etcd", argv.data());
      ::_exit(127);
    }
    m.pid = pid;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto& m : members_) {
      int status = 0;
      if (m.pid > 0 && ::waitpid(m.pid, &status, WNOHANG) == m.pid) {
        m.pid = -1;
        *problem = "etcd member " + m.name + " exited at start-up (is etcd in PATH?)\n" + logs();
        return false;
      }
    }
    if (leader() >= 0) {
      // Every member must answer too, not just agree.
      bool all = true;
      for (int i = 0; i < size() && all; ++i) {
        etcd::Client c(etcd::Cluster::plain({endpoint(i)}));
        all = c.call("/v3/kv/range", etcd::Json{{"key", "AA=="}}, soon()).ok();
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
    if (members_[i].pid <= 0) continue;
    etcd::Client c(etcd::Cluster::plain({endpoint(i)}));
    etcd::Reply r = c.call("/v3/maintenance/status", etcd::Json::object(), soon());
    if (!r.ok()) continue;
    // Member ids are uint64 (often above INT64_MAX): compared as the
    // decimal strings the gateway sends.
    std::string leader = r.body.value("leader", std::string());
    if (leader.empty() || leader == "0") continue;
    // Find the member whose own id is the leader's.
    for (int j = 0; j < size(); ++j) {
      if (members_[j].pid <= 0) continue;
      etcd::Client cj(etcd::Cluster::plain({endpoint(j)}));
      etcd::Reply rj = cj.call("/v3/maintenance/status", etcd::Json::object(), soon());
      if (rj.ok() && rj.body["header"].value("member_id", std::string()) == leader) return j;
    }
  }
  return -1;
}

void EtcdCluster::kill_member(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  int status = 0;
  ::waitpid(m.pid, &status, 0);
  m.pid = -1;
}

void EtcdCluster::kill_all() {
  for (int i = 0; i < size(); ++i) kill_member(i);
}

std::string EtcdCluster::logs() const {
  std::string out;
  for (const auto& m : members_) out += "--- " + m.name + " (" + m.log + ")\n" + read_all(m.log);
  return out;
}

}  // namespace pidlock_etcd_test
