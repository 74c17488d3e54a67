// Shared pieces of the etcd tests: a fixture that starts a cluster per test
// (support/etcd_cluster.hpp), holder processes (pidlock_etcd_holder, see
// support/etcd_holder_main.cpp) and the pidlock command.
#ifndef PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP
#define PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP

#include "support/etcd_cluster.hpp"
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace pidlock_etcd_test {

using namespace pidlock_test;

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// "lost NANOSECONDS REASON" / "acquired TOKEN NANOSECONDS" lines of a holder.
struct HolderLine {
  std::string word;
  long long a = 0;  // lost: ns; acquired: token
  long long b = 0;  // acquired: ns
  std::string rest;
};
HolderLine parse_holder_line(const std::string& line);

// A holder process: acquires (waiting, when asked) and reports.
std::unique_ptr<Child> start_holder_process(const std::string& address, bool wait);
// Sends a command to a holder and returns its answer.
std::string ask(Child& child, const std::string& command);

// Runs the pidlock command to completion (SIGKILLed after `timeout`).
// Returns the exit status (or 128+N for signal N); stderr goes to *err and
// stdout to *out when given.
int run_pidlock(const std::vector<std::string>& args, std::string* err = nullptr,
                std::chrono::milliseconds timeout = std::chrono::seconds(60), std::string* out = nullptr);

class EtcdTest : public ::testing::Test {
 protected:
  explicit EtcdTest(int members = 3, ClusterOptions options = {}) : cluster_(members, std::move(options)) {}
  void SetUp() override;

  // Starts a holder process and waits for its "acquired TOKEN" line.
  std::unique_ptr<Child> start_holder(const std::string& address, std::uint64_t* token, bool wait = false);

  EtcdCluster cluster_;
  pidlock::LockManager manager_;
};

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP
