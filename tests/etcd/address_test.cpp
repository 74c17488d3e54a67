// Lock addresses and the base64 codec: no etcd needed.
#include "etcd/address.hpp"
#include "etcd/base64.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

namespace etcd = pidlock::detail::etcd;

TEST(EtcdAddress, ParsesEndpointsKeyAndTtl) {
  etcd::Address a;
  std::string problem;
  ASSERT_TRUE(etcd::parse_address("etcd://127.0.0.1:2379,db2:2379,[::1]:12379/locks/db?ttl=3", &a, &problem))
      << problem;
  EXPECT_EQ(a.endpoints, (std::vector<std::string>{"127.0.0.1:2379", "db2:2379", "[::1]:12379"}));
  EXPECT_EQ(a.key, "/locks/db");
  EXPECT_EQ(a.ttl.count(), 3);
  ASSERT_TRUE(etcd::parse_address("etcd://h:1/k", &a, &problem)) << problem;
  EXPECT_EQ(a.ttl, etcd::kDefaultTtl);
}

TEST(EtcdAddress, RefusesMalformedAddresses) {
  for (const char* bad : {"etcd://", "etcd://h:1", "etcd://h:1/", "etcd:///k", "etcd://h/k", "etcd://h:0/k",
                          "etcd://h:99999/k", "etcd://h:x/k", "etcd://h:1,/k", "etcd://u@h:1/k", "etcd://h:1/k/",
                          "etcd://h:1/k?ttl=0", "etcd://h:1/k?ttl=-1", "etcd://h:1/k?ttl=abc", "etcd://h:1/k?x=1",
                          "etcd://h:1/a\nb"}) {
    etcd::Address a;
    std::string problem;
    EXPECT_FALSE(etcd::parse_address(bad, &a, &problem)) << bad;
    EXPECT_FALSE(problem.empty()) << bad;
  }
}

TEST(EtcdAddress, LockManagerReportsInvalidArgumentWithoutNetwork) {
  pidlock::LockManager manager;
  std::error_code ec;
  pidlock::LockHandle h = manager.acquire("etcd://127.0.0.1:1/k?ttl=zero", {}, ec);
  EXPECT_EQ(ec, pidlock::errc::invalid_argument);
  EXPECT_FALSE(h);
  try {
    (void)manager.inspect("etcd://nowhere/k");
    FAIL() << "no exception";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::invalid_argument);
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
