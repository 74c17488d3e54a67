// Anything that does not answer as etcd v3 is a configuration error, never a
// verdict (G10): not "held" (exit 75, `--wait` for ever,
// `--conflict-exit-code 0` skipping the job silently), not "free".
#include "etcd/client.hpp"
#include "etcd_fixture.hpp"
#include "fake_server.hpp"

#include <chrono>

namespace pidlock_etcd_test {
namespace {

using namespace std::chrono_literals;
namespace etcd = pidlock::detail::etcd;

constexpr int kConfig = 78;

// Every way of using a misconfigured address fails fast with the
// configuration error, naming the endpoint.
void expect_misconfigured(const std::string& address, const std::string& endpoint) {
  SCOPED_TRACE(address);
  pidlock::LockManager manager;
  std::error_code ec;
  pidlock::Inspection held;
  const auto start = Clock::now();
  pidlock::LockHandle h = manager.acquire(address, {}, ec, &held);
  EXPECT_FALSE(h);
  EXPECT_EQ(ec, pidlock::errc::misconfigured) << ec.message();
  try {
    (void)manager.inspect(address);
    ADD_FAILURE() << "inspect gave a verdict";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::misconfigured);
    EXPECT_NE(std::string(e.what()).find(endpoint), std::string::npos) << e.what();
  }
  std::string err;
  EXPECT_EQ(run_pidlock({"status", address}, &err), kConfig) << err;
  EXPECT_EQ(run_pidlock({"run", address, "--", "true"}, &err), kConfig) << err;
  EXPECT_EQ(run_pidlock({"run", "--conflict-exit-code", "0", address, "--", "true"}, &err), kConfig) << err;
  EXPECT_EQ(run_pidlock({"run", "--wait", address, "--", "true"}, &err), kConfig) << err;
  EXPECT_EQ(run_pidlock({"wait", address}, &err), kConfig) << err;
  EXPECT_NE(err.find("misconfigured"), std::string::npos) << err;
  EXPECT_LT(seconds_since(start), 10.0) << "a misconfiguration must not wait";
}

TEST(EtcdMisconfiguration, AServerAnsweringEmptyJsonIsNotEtcd) {
  FakeServer server(FakeServer::http(200, "{}"));
  expect_misconfigured("etcd://" + server.endpoint() + "/locks/x", server.endpoint());
  EXPECT_GT(server.requests(), 0);
}

TEST(EtcdMisconfiguration, AnHttpServerIsNotEtcd) {
  FakeServer not_found(FakeServer::http(404, "404 page not found\n", "text/plain"));
  expect_misconfigured("etcd://" + not_found.endpoint() + "/locks/x", not_found.endpoint());
  FakeServer html(FakeServer::http(200, "<html><body>It works!</body></html>", "text/html"));
  expect_misconfigured("etcd://" + html.endpoint() + "/locks/x", html.endpoint());
  // JSON with an error that is not gRPC's.
  FakeServer json_error(FakeServer::http(400, "{\"error\":\"bad request\"}"));
  expect_misconfigured("etcd://" + json_error.endpoint() + "/locks/x", json_error.endpoint());
}

TEST(EtcdMisconfiguration, AServerThatDoesNotSpeakHttpIsNotEtcd) {
  FakeServer ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
  expect_misconfigured("etcd://" + ssh.endpoint() + "/locks/x", ssh.endpoint());
}

// A proxy in front of a member that says the member is down (502/503/504)
// is no misconfiguration: the state is unknown, which counts as held.
TEST(EtcdMisconfiguration, AProxySayingTheMemberIsDownIsUnknown) {
  FakeServer proxy(FakeServer::http(503, "<html>Service Unavailable</html>", "text/html"));
  pidlock::LockManager manager;
  pidlock::Inspection seen = manager.inspect("etcd://" + proxy.endpoint() + "/locks/x");
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kUnknown);
  EXPECT_EQ(seen.reason, pidlock::Reason::kProbeFailed);
}

class EtcdMisconfigurationTest : public EtcdTest {};

// The peer port of a real member answers HTTP, but not etcd's client API;
// https to a plain member is no TLS server; and a member of another
// cluster among the endpoints is refused the moment it answers.
TEST_F(EtcdMisconfigurationTest, PeerPortHttpsAndAnotherClusterAreConfigurationErrors) {
  const std::string peer = "127.0.0.1:" + std::to_string(cluster_.peer_port(0));
  expect_misconfigured("etcd://" + peer + "/pidlock-test/peer", peer);
  const std::string https = "https://127.0.0.1:" + std::to_string(cluster_.client_port(0));
  expect_misconfigured("etcd://" + https + "/pidlock-test/https", "127.0.0.1:" + std::to_string(cluster_.client_port(0)));

  FakeServer other(FakeServer::http(
      200, R"({"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"1"},"count":"0"})"));
  etcd::Cluster mixed = cluster_.client_config(0);
  mixed.endpoints.push_back(etcd::Endpoint{other.endpoint(), false});
  etcd::Client client(mixed);
  ASSERT_TRUE(client.call("/v3/kv/range", etcd::Json{{"key", "AA=="}}).ok());
  client.prefer(1);
  etcd::Reply r = client.call("/v3/kv/range", etcd::Json{{"key", "AA=="}});
  EXPECT_EQ(r.status, etcd::Reply::Status::kMisconfigured);
  EXPECT_NE(r.message.find("different etcd clusters"), std::string::npos) << r.message;
  // The same fake alone looks like etcd: that is what the cluster check is for.
  etcd::Client alone(etcd::Cluster::plain({other.endpoint()}));
  EXPECT_TRUE(alone.call("/v3/kv/range", etcd::Json{{"key", "AA=="}}).ok());
}

}  // namespace
}  // namespace pidlock_etcd_test
