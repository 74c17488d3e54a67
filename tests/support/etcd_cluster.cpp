#include "support/etcd_cluster.hpp"

#include "support/files.hpp"
#include "support/loopback.hpp"

#include "etcd/client.hpp"

#include <curl/curl.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <thread>

namespace pidlock_test {

namespace etcd = pidlock::detail::etcd;

namespace {

etcd::Clock::time_point soon() { return etcd::Clock::now() + std::chrono::milliseconds(500); }

}  // namespace

EtcdCluster::EtcdCluster(int members, ClusterOptions options) : options_(std::move(options)) {
  std::vector<int> ports = free_loopback_ports(2 * members);
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
  return (tls() ? "https://127.0.0.1:" : "127.0.0.1:") + std::to_string(members_[i].client_port);
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

std::string EtcdCluster::address_via(const std::string& endpoints, const std::string& name, int ttl) const {
  std::string a = "etcd://" + endpoints + "/pidlock-test/" + name;
  std::string query;
  if (ttl > 0) query += "ttl=" + std::to_string(ttl);
  if (tls()) {
    const std::string& d = options_.cert_dir;
    query += std::string(query.empty() ? "" : "&") + "cacert=" + d + "/ca.pem&cert=" + d + "/client.pem&key=" + d +
             "/client-key.pem";
  }
  return query.empty() ? a : a + "?" + query;
}

std::string EtcdCluster::address(const std::string& name, int ttl, int first) const {
  return address_via(endpoints(first), name, ttl);
}

etcd::Cluster EtcdCluster::client_config(int member) const {
  etcd::Cluster c;
  for (int i = 0; i < size(); ++i)
    if (member < 0 || i == member)
      c.endpoints.push_back(etcd::Endpoint{"127.0.0.1:" + std::to_string(members_[i].client_port), tls()});
  if (tls()) {
    c.security.ca_file = options_.cert_dir + "/ca.pem";
    c.security.cert_file = options_.cert_dir + "/client.pem";
    c.security.key_file = options_.cert_dir + "/client-key.pem";
  }
  return c;
}

std::vector<std::string> EtcdCluster::etcdctl() const {
  std::string eps;
  for (int i = 0; i < size(); ++i) {
    if (!started(i)) continue;
    eps += std::string(eps.empty() ? "" : ",") + (tls() ? "https://" : "http://") + "127.0.0.1:" +
           std::to_string(members_[i].client_port);
  }
  std::vector<std::string> argv = {"etcdctl", "--endpoints=" + eps};
  if (tls()) {
    argv.push_back("--cacert=" + options_.cert_dir + "/ca.pem");
    argv.push_back("--cert=" + options_.cert_dir + "/client.pem");
    argv.push_back("--key=" + options_.cert_dir + "/client-key.pem");
  }
  return argv;
}

bool EtcdCluster::spawn(Member& m, std::string* problem) {
  Stdio stdio;
  stdio.output_file = stdio.error_file = m.log;
  stdio.append = true;         // a restarted member adds to its log
  stdio.die_with_test = true;  // even when the test is killed by a timeout
  m.process = Child::spawn(m.args, stdio);
  m.stopped = false;
  if (m.process.pid() <= 0) {
    *problem = "cannot start etcd member " + m.name;
    return false;
  }
  return true;
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
  const std::string& dir = dir_.path();
  const std::string token = "pidlock-test-" + std::to_string(::getpid()) + "-" + dir.substr(dir.size() - 6);
  for (auto& m : members_) {
    const std::string client = (tls() ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(m.client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    m.args = {
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
        // Fast elections keep the leader-loss tests short; etcd's minimum
        // lease ttl is 1.5 election timeouts, well below the tests' 2-3 s.
        "--heartbeat-interval", "50",
        "--election-timeout", "500",
        "--logger", "zap",
        "--log-level", "warn",
    };
    if (tls()) {
      const std::string& d = options_.cert_dir;
      for (const std::string& a : {"--cert-file=" + d + "/server.pem", "--key-file=" + d + "/server-key.pem",
                                   "--trusted-ca-file=" + d + "/ca.pem", std::string("--client-cert-auth")})
        m.args.push_back(a);
    }
    for (const auto& a : options_.extra_args) m.args.push_back(a);
    if (!spawn(m, problem)) return false;
  }
  return wait_healthy(problem, timeout);
}

bool EtcdCluster::wait_healthy(std::string* problem, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto& m : members_) {
      if (!m.process.reaped() && !m.process.running()) {
        *problem = "etcd member " + m.name + " exited (is etcd in PATH?)\n" + logs();
        return false;
      }
    }
    if (leader() >= 0) {
      // Every running member must answer too, not just agree.
      bool all = true;
      for (int i = 0; i < size() && all; ++i) {
        if (!answering(i)) continue;
        etcd::Client c(client_config(i));
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
    if (!answering(i)) continue;
    etcd::Client c(client_config(i));
    etcd::Reply r = c.call("/v3/maintenance/status", etcd::Json::object(), soon());
    if (!r.ok()) continue;
    // Member ids are uint64 (often above INT64_MAX): compared as the
    // decimal strings the gateway sends.
    std::string leader = r.body.value("leader", std::string());
    if (leader.empty() || leader == "0") continue;
    // Find the member whose own id is the leader's.
    for (int j = 0; j < size(); ++j) {
      if (!answering(j)) continue;
      etcd::Client cj(client_config(j));
      etcd::Reply rj = cj.call("/v3/maintenance/status", etcd::Json::object(), soon());
      if (rj.ok() && rj.body["header"].value("member_id", std::string()) == leader) return j;
    }
  }
  return -1;
}

void EtcdCluster::kill_member(int i) {
  // SIGKILL ends a frozen process too.
  members_[i].process.kill(SIGKILL);
  members_[i].process.wait();
  members_[i].stopped = false;
}

void EtcdCluster::kill_all() {
  for (int i = 0; i < size(); ++i) kill_member(i);
}

void EtcdCluster::stop_member(int i) {
  if (!started(i)) return;
  members_[i].process.kill(SIGSTOP);
  members_[i].stopped = true;
}

void EtcdCluster::continue_member(int i) {
  if (!started(i)) return;
  members_[i].process.kill(SIGCONT);
  members_[i].stopped = false;
}

bool EtcdCluster::restart_member(int i, std::string* problem) {
  if (members_[i].process.running()) return true;
  // The data folder has the member's WAL: etcd ignores the --initial-*
  // flags and rejoins its cluster.
  return spawn(members_[i], problem);
}

namespace {

size_t append_text(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

}  // namespace

long long EtcdCluster::proposals_committed() const {
  for (int i = 0; i < size(); ++i) {
    if (!answering(i)) continue;
    CURL* easy = curl_easy_init();
    std::string text;
    const std::string url = (tls() ? "https://" : "http://") + std::string("127.0.0.1:") +
                            std::to_string(members_[i].client_port) + "/metrics";
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_text);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &text);
    if (tls()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, (options_.cert_dir + "/ca.pem").c_str());
      curl_easy_setopt(easy, CURLOPT_SSLCERT, (options_.cert_dir + "/client.pem").c_str());
      curl_easy_setopt(easy, CURLOPT_SSLKEY, (options_.cert_dir + "/client-key.pem").c_str());
    }
    CURLcode rc = curl_easy_perform(easy);
    curl_easy_cleanup(easy);
    if (rc != CURLE_OK) continue;
    const std::string name = "\netcd_server_proposals_committed_total ";
    std::size_t at = text.find(name);
    if (at == std::string::npos) continue;
    return static_cast<long long>(std::strtod(text.c_str() + at + name.size(), nullptr));
  }
  return -1;
}

std::string EtcdCluster::logs() const {
  std::string out;
  for (const auto& m : members_) out += "--- " + m.name + " (" + m.log + ")\n" + try_read_file(m.log).value_or("");
  return out;
}

}  // namespace pidlock_test
