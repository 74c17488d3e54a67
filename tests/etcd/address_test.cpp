// Lock addresses and the base64 codec: no etcd needed.
#include "etcd/address.hpp"
#include "etcd/base64.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

namespace etcd = pidlock::detail::etcd;

namespace {

// No ETCDCTL_* variable from the environment the tests run in.
const char* no_env(const char*) { return nullptr; }

std::vector<std::string> host_ports(const etcd::Address& a) {
  std::vector<std::string> out;
  for (const auto& ep : a.cluster.endpoints) out.push_back((ep.tls ? "https://" : "") + ep.host_port);
  return out;
}

}  // namespace

TEST(EtcdAddress, ParsesEndpointsKeyAndTtl) {
  etcd::Address a;
  std::string problem;
  ASSERT_TRUE(etcd::parse_address("etcd://127.0.0.1:2379,db2:2379,[::1]:12379/locks/db?ttl=3", &a, &problem, no_env))
      << problem;
  EXPECT_EQ(host_ports(a), (std::vector<std::string>{"127.0.0.1:2379", "db2:2379", "[::1]:12379"}));
  EXPECT_EQ(a.cluster.endpoints[0].url(), "http://127.0.0.1:2379");
  EXPECT_EQ(a.key, "/locks/db");
  EXPECT_EQ(a.ttl.count(), 3);
  EXPECT_TRUE(a.cluster.security.user.empty());
  ASSERT_TRUE(etcd::parse_address("etcd://h:1/k", &a, &problem, no_env)) << problem;
  EXPECT_EQ(a.ttl, etcd::kDefaultTtl);
  // An explicit http:// is the same as none.
  ASSERT_TRUE(etcd::parse_address("etcd://http://h:1,h2:2/k", &a, &problem, no_env)) << problem;
  EXPECT_EQ(host_ports(a), (std::vector<std::string>{"h:1", "h2:2"}));
}

TEST(EtcdAddress, TlsEndpointsAndFilesFromAddressOrEnvironment) {
  etcd::Address a;
  std::string problem;
  // /dev/null stands in for readable PEM files: the parser only checks
  // that it can read them.
  ASSERT_TRUE(etcd::parse_address(
      "etcd://https://10.0.0.1:2379,https://[::1]:2379/locks/db?cacert=/dev/null&cert=/dev/null&key=%2Fdev%2Fnull&user=alice",
      &a, &problem, no_env)) << problem;
  EXPECT_EQ(host_ports(a), (std::vector<std::string>{"https://10.0.0.1:2379", "https://[::1]:2379"}));
  EXPECT_EQ(a.cluster.endpoints[1].url(), "https://[::1]:2379");
  EXPECT_EQ(a.cluster.security.ca_file, "/dev/null");
  EXPECT_EQ(a.cluster.security.key_file, "/dev/null");
  EXPECT_EQ(a.cluster.security.user, "alice");
  EXPECT_TRUE(a.cluster.security.password.empty());

  // etcdctl's variables fill in what the address leaves out.
  auto env = [](const char* name) -> const char* {
    std::string n = name;
    if (n == "ETCDCTL_CACERT") return "/dev/null";
    if (n == "ETCDCTL_USER") return "bob:secret";
    return nullptr;
  };
  ASSERT_TRUE(etcd::parse_address("etcd://https://h:1/k", &a, &problem, env)) << problem;
  EXPECT_EQ(a.cluster.security.ca_file, "/dev/null");
  EXPECT_EQ(a.cluster.security.user, "bob");
  EXPECT_EQ(a.cluster.security.password, "secret");
  // The address wins; TLS variables do not apply to plain endpoints.
  ASSERT_TRUE(etcd::parse_address("etcd://h:1/k?user=carol", &a, &problem, env)) << problem;
  EXPECT_TRUE(a.cluster.security.ca_file.empty());
  EXPECT_EQ(a.cluster.security.user, "carol");
  EXPECT_TRUE(a.cluster.security.password.empty());  // bob's password is bob's
  auto password = [](const char* name) -> const char* {
    return std::string(name) == "ETCDCTL_PASSWORD" ? "pw" : nullptr;
  };
  ASSERT_TRUE(etcd::parse_address("etcd://h:1/k?user=carol", &a, &problem, password)) << problem;
  EXPECT_EQ(a.cluster.security.password, "pw");
}

TEST(EtcdAddress, RefusesMalformedAddresses) {
  for (const char* bad : {"etcd://", "etcd://h:1", "etcd://h:1/", "etcd:///k", "etcd://h/k", "etcd://h:0/k",
                          "etcd://h:99999/k", "etcd://h:x/k", "etcd://h:1,/k", "etcd://u@h:1/k", "etcd://h:1/k/",
                          "etcd://h:1/k?ttl=0", "etcd://h:1/k?ttl=-1", "etcd://h:1/k?ttl=abc", "etcd://h:1/k?x=1",
                          "etcd://h:1/a\nb", "etcd://ftp://h:1/k", "etcd://https://h:1/k?cacert=/no/such/file",
                          "etcd://h:1/k?cacert=/dev/null", "etcd://https://h:1/k?cert=/dev/null",
                          "etcd://h:1/k?password=x", "etcd://h:1/k?user=", "etcd://h:1/k?ttl=%zz"}) {
    etcd::Address a;
    std::string problem;
    EXPECT_FALSE(etcd::parse_address(bad, &a, &problem, no_env)) << bad;
    EXPECT_FALSE(problem.empty()) << bad;
  }
  etcd::Address a;
  std::string problem;
  EXPECT_FALSE(etcd::parse_address("etcd://h:1/k?password=x", &a, &problem, no_env));
  EXPECT_NE(problem.find("ETCDCTL_PASSWORD"), std::string::npos) << problem;
  EXPECT_FALSE(etcd::parse_address("etcd://https://h:1/k?cacert=/no/such/file", &a, &problem, no_env));
  EXPECT_NE(problem.find("/no/such/file"), std::string::npos) << problem;
}

TEST(EtcdAddress, LockManagerReportsMisconfigurationWithoutNetwork) {
  pidlock::LockManager manager;
  std::error_code ec;
  pidlock::LockHandle h = manager.acquire("etcd://127.0.0.1:1/k?ttl=zero", {}, ec);
  EXPECT_EQ(ec, pidlock::errc::misconfigured);
  EXPECT_FALSE(h);
  try {
    (void)manager.inspect("etcd://nowhere/k");
    FAIL() << "no exception";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::misconfigured);
    EXPECT_NE(std::string(e.what()).find("HOST:PORT"), std::string::npos) << e.what();
  }
}

TEST(EtcdBase64, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 300; ++n) {
    auto encoded = etcd::base64_encode(bytes);
    EXPECT_EQ(encoded.size() % 4, 0u);
    auto decoded = etcd::base64_decode(encoded);
    ASSERT_TRUE(decoded) << n;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(n * 37 + 11);
  }
  EXPECT_EQ(etcd::base64_encode("/p/x"), "L3AveA==");
  EXPECT_EQ(etcd::base64_decode("aGVsbG8="), std::optional<std::string>("hello"));
  EXPECT_FALSE(etcd::base64_decode("aGVsbG8"));
  EXPECT_FALSE(etcd::base64_decode("a=Vs"));
  EXPECT_FALSE(etcd::base64_decode("aGV*"));
}
