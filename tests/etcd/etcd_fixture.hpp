// Shared pieces of the etcd tests: a fixture that starts a cluster per test,
// holder processes (pidlock_etcd_holder) and the pidlock command.
#ifndef PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP
#define PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP

#include "child_process.hpp"
#include "etcd_cluster.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_etcd_test {

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
std::unique_ptr<ChildProcess> start_holder_process(const std::string& address, bool wait);
// Sends a command to a holder and returns its answer.
std::string ask(ChildProcess& child, const std::string& command);

// Runs the pidlock command to completion. Returns the exit status (or
// 128+N for signal N); stderr goes to *err and stdout to *out when given.
int run_pidlock(const std::vector<std::string>& args, std::string* err = nullptr,
                std::chrono::milliseconds timeout = std::chrono::seconds(60), std::string* out = nullptr);

// A fresh folder under /tmp for a test's files (removed with the object).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

class EtcdTest : public ::testing::Test {
 protected:
  explicit EtcdTest(int members = 3, ClusterOptions options = {}) : cluster_(members, std::move(options)) {}
  void SetUp() override;

  // Starts a holder process and waits for its "acquired TOKEN" line.
  std::unique_ptr<ChildProcess> start_holder(const std::string& address, std::uint64_t* token, bool wait = false);

  EtcdCluster cluster_;
  pidlock::LockManager manager_;
};

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_ETCD_FIXTURE_HPP
