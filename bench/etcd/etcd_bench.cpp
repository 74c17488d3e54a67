// pidlock on etcd against etcd's own `etcdctl lock`, on a local
// three-member cluster (127.0.0.1, started here; `etcd` and `etcdctl` from
// PATH). Not part of ctest. See docs/etcd.md for the numbers and how to
// read them.
//
//   pidlock_etcd_bench [--iterations N] [--handoffs M]
//
// Measures, each as p50/p99 over its runs:
//  1. acquire+release, in process: LockManager::acquire + LockHandle::release
//     (a lease grant, a transaction, a revoke: three round trips);
//  2. the same from a fresh process: `pidlock run ADDR -- true` against
//     `etcdctl lock NAME true` (both pay process start-up), with
//     `etcdctl get` as the cost of starting a Go client and one round trip;
//  3. hand-off: a holder process and a waiter process blocked on the same
//     lock; the clock runs from the moment this program asks the holder to
//     let go (a "release" line to pidlock_etcd_holder, SIGINT to `etcdctl
//     lock`, which unlocks on SIGINT) until it reads the waiter's
//     "acquired" line.
#include "support/child.hpp"
#include "support/etcd_cluster.hpp"
#include "support/proc.hpp"

#include <pidlock/pidlock.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using pidlock_test::Child;
using pidlock_test::EtcdCluster;
using pidlock_test::monotonic_ns;
using pidlock_test::Stdio;
using namespace std::chrono_literals;

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
  std::size_t n = 0;
};

Stats stats(std::vector<double> ms) {
  Stats s;
  s.n = ms.size();
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(std::ceil(q * ms.size())) - 1)]; };
  s.p50 = at(0.50);
  s.p99 = at(0.99);
  for (double v : ms) s.mean += v;
  s.mean /= ms.size();
  return s;
}

void row(const std::string& what, const Stats& s) {
  std::printf("| %-58s | %5zu | %8.2f | %8.2f |\n", what.c_str(), s.n, s.p50, s.p99);
  std::fflush(stdout);
}

double ms_since(long long t0) { return (monotonic_ns() - t0) / 1e6; }

// Runs argv to completion with stdout/stderr to /dev/null; the exit status.
int run(const std::vector<std::string>& argv) {
  Stdio quiet;
  quiet.output_file = quiet.error_file = "/dev/null";
  return Child::spawn(argv, quiet).wait();
}

// A holder the benchmark talks to a line at a time.
std::unique_ptr<Child> start(const std::vector<std::string>& argv) {
  return std::make_unique<Child>(Child::spawn(argv, Stdio::interactive()));
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 300;
  int handoffs = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--handoffs") == 0) handoffs = std::atoi(argv[i + 1]);
  }
  pidlock::set_log_threshold(pidlock::LogThreshold::kError);
  ::signal(SIGPIPE, SIG_IGN);
  const std::string holder = PIDLOCK_ETCD_HOLDER;
  const std::string cli = PIDLOCK_CLI;

  EtcdCluster cluster(3);
  std::string problem;
  if (!cluster.start(&problem)) {
    std::cerr << "cannot start the etcd cluster: " << problem << "\n";
    return 1;
  }
  const std::string endpoints = cluster.endpoints();
  std::printf("etcd cluster: 3 members on %s\n\n", endpoints.c_str());
  std::printf("| %-58s | %5s | %8s | %8s |\n", "operation (milliseconds)", "runs", "p50", "p99");
  std::printf("|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(7, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str());

  // 1. In process.
  {
    pidlock::LockManager manager;
    const std::string address = "etcd://" + endpoints + "/bench/inproc";
    std::vector<double> both, acquire, release;
    for (int i = 0; i < iterations + 10; ++i) {
      long long t0 = monotonic_ns();
      pidlock::LockHandle h = manager.acquire(address);
      long long t1 = monotonic_ns();
      std::error_code ec = h.release();
      long long t2 = monotonic_ns();
      if (ec) std::cerr << "release: " << ec.message() << "\n";
      if (i < 10) continue;  // warm-up: connections, first leases
      acquire.push_back((t1 - t0) / 1e6);
      release.push_back((t2 - t1) / 1e6);
      both.push_back((t2 - t0) / 1e6);
    }
    row("pidlock acquire (LockManager, in process)", stats(acquire));
    row("pidlock release (LockHandle, in process)", stats(release));
    row("pidlock acquire+release (in process)", stats(both));
  }

  // 2. From a fresh process each time.
  {
    const int n = std::max(20, iterations / 6);
    std::vector<double> pl, ec, get;
    for (int i = 0; i < n; ++i) {
      long long t0 = monotonic_ns();
      if (run({cli, "run", "etcd://" + endpoints + "/bench/cli", "--", "true"}) != 0) std::cerr << "pidlock run failed\n";
      pl.push_back(ms_since(t0));
      t0 = monotonic_ns();
      if (run({"etcdctl", "--endpoints=" + endpoints, "lock", "bench-etcdctl", "true"}) != 0)
        std::cerr << "etcdctl lock failed\n";
      ec.push_back(ms_since(t0));
      t0 = monotonic_ns();
      run({"etcdctl", "--endpoints=" + endpoints, "get", "bench-nothing"});
      get.push_back(ms_since(t0));
    }
    row("`pidlock run ADDR -- true` (process: acquire, run, release)", stats(pl));
    row("`etcdctl lock NAME true` (process: lock, run, unlock)", stats(ec));
    row("`etcdctl get KEY` (process start-up + one round trip)", stats(get));
  }

  // 3. Hand-off between processes.
  {
    std::vector<double> pl;
    const std::string address = "etcd://" + endpoints + "/bench/handoff";
    auto first = start({holder, address});
    auto line = first->read_line();
    if (!line || line->rfind("acquired", 0) != 0) {
      std::cerr << "holder did not acquire: " << line.value_or("(nothing)") << "\n";
      return 1;
    }
    for (int i = 0; i < handoffs; ++i) {
      auto next = start({holder, address, "wait"});
      std::this_thread::sleep_for(150ms);  // let it block on the watch
      long long t0 = monotonic_ns();
      first->send("release");
      auto got = next->read_line(10s);
      double ms = ms_since(t0);
      if (!got || got->rfind("acquired", 0) != 0) {
        std::cerr << "waiter did not acquire: " << got.value_or("(nothing)") << "\n";
        return 1;
      }
      pl.push_back(ms);
      first->close_input();
      first->wait();
      first = std::move(next);
    }
    first->send("release");
    first->read_line();
    row("hand-off, pidlock holder -> waiting pidlock process", stats(pl));
  }
  {
    std::vector<double> ec;
    const std::string name = "bench-handoff";
    auto first = start({"etcdctl", "--endpoints=" + endpoints, "lock", name});
    if (!first->read_line()) {
      std::cerr << "etcdctl lock did not acquire\n";
      return 1;
    }
    for (int i = 0; i < handoffs; ++i) {
      auto next = start({"etcdctl", "--endpoints=" + endpoints, "lock", name});
      std::this_thread::sleep_for(150ms);
      long long t0 = monotonic_ns();
      first->kill(SIGINT);  // etcdctl lock unlocks on SIGINT
      auto got = next->read_line(10s);
      double ms = ms_since(t0);
      if (!got) {
        std::cerr << "etcdctl waiter did not acquire\n";
        return 1;
      }
      ec.push_back(ms);
      first->wait();
      first = std::move(next);
    }
    first->kill(SIGINT);
    first->wait();
    row("hand-off, `etcdctl lock` holder -> waiting `etcdctl lock`", stats(ec));
  }
  return 0;
}
