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
//  3. hand-off with 1, 4 and 16 waiters queued behind a holder: the clock
//     runs from the moment this program asks the holder to let go (a
//     "release" line to pidlock_etcd_holder, SIGINT to `etcdctl lock`,
//     which unlocks on SIGINT) until it reads the first waiter's line; and
//     the raft writes (etcd_server_proposals_committed_total) in that
//     window and per whole cycle (a new waiter joins after each hand-off).
#include "support/child.hpp"
#include "support/etcd_cluster.hpp"
#include "support/proc.hpp"

#include <pidlock/pidlock.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
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
using pidlock_test::kPatience;
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

// One side of the hand-off benchmark: how to start a contender that waits
// for the lock, how to make the holder let go, and the prefix of the line a
// contender prints once it has the lock.
struct Contender {
  std::function<std::unique_ptr<Child>()> start;
  std::function<void(Child&)> release;
  std::string acquired_prefix;
};

struct HandoffResult {
  Stats latency;
  double writes_per_window = 0;  // raft writes from "let go" to the next holder's line
  double writes_per_cycle = 0;   // all raft writes, per contender that got the lock
};

// `etcdctl lock` never revokes its session's lease (it deletes its key and
// exits); the lease ends by itself a ttl later, and that revoke is a raft
// write too. Its ttl is set short, and each hand-off run waits this long at
// its end, so that every write a run caused is counted in that run.
constexpr int kEtcdctlTtl = 5;
constexpr auto kSettle = std::chrono::seconds(kEtcdctlTtl + 2);

bool acquired(Child& c, const std::string& prefix, std::chrono::milliseconds within) {
  auto line = c.read_line(within);
  return line && line->rfind(prefix, 0) == 0;
}

// Keeps `waiters` contenders queued behind a holder; each round the holder
// lets go, the clock runs until the first waiter says it has the lock, and
// a new waiter joins the end of the queue. The raft writes come from the
// members' etcd_server_proposals_committed_total.
HandoffResult handoff(const EtcdCluster& cluster, const Contender& side, int waiters, int rounds) {
  HandoffResult result;
  const long long start_writes = cluster.proposals_committed();
  auto holder = side.start();
  if (!acquired(*holder, side.acquired_prefix, 10s)) {
    std::cerr << "the first contender did not get the free lock\n";
    return result;
  }
  std::deque<std::unique_ptr<Child>> queue;
  for (int i = 0; i < waiters; ++i) {
    queue.push_back(side.start());
    std::this_thread::sleep_for(300ms);  // queued before the next one comes
  }
  std::vector<double> ms;
  long long window_writes = 0;
  for (int i = 0; i < rounds; ++i) {
    const long long before = cluster.proposals_committed();
    const long long t0 = monotonic_ns();
    side.release(*holder);
    if (!acquired(*queue.front(), side.acquired_prefix, 10s)) {
      std::cerr << "the next contender did not get the lock\n";
      return result;
    }
    ms.push_back(ms_since(t0));
    window_writes += cluster.proposals_committed() - before;
    holder->wait(kPatience);
    holder = std::move(queue.front());
    queue.pop_front();
    queue.push_back(side.start());
    std::this_thread::sleep_for(300ms);  // the new one queued
  }
  side.release(*holder);
  holder->wait(kPatience);
  for (auto& q : queue) {  // each gets the lock in turn and lets go
    if (acquired(*q, side.acquired_prefix, 10s)) side.release(*q);
    q->wait(kPatience);
  }
  std::this_thread::sleep_for(kSettle);
  const long long all_writes = cluster.proposals_committed() - start_writes;
  result.latency = stats(ms);
  result.writes_per_window = static_cast<double>(window_writes) / rounds;
  result.writes_per_cycle = static_cast<double>(all_writes) / (1 + rounds + waiters);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 300;
  int handoffs = 30;
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
      if (run({"etcdctl", "--endpoints=" + endpoints, "lock", "--ttl=" + std::to_string(kEtcdctlTtl), "bench-etcdctl",
               "true"}) != 0)
        std::cerr << "etcdctl lock failed\n";
      ec.push_back(ms_since(t0));
      t0 = monotonic_ns();
      run({"etcdctl", "--endpoints=" + endpoints, "get", "bench-nothing"});
      get.push_back(ms_since(t0));
    }
    row("`pidlock run ADDR -- true` (process: acquire, run, release)", stats(pl));
    row("`etcdctl lock NAME true` (process: lock, run, unlock)", stats(ec));
    row("`etcdctl get KEY` (process start-up + one round trip)", stats(get));
    std::this_thread::sleep_for(kSettle);  // etcdctl's leases end before the hand-offs count writes
  }

  // 3. Hand-off between processes, with 1, 4 and 16 waiters queued.
  std::printf("\n| %-44s | %7s | %5s | %8s | %8s | %13s | %13s |\n", "hand-off (milliseconds; raft writes)", "waiters",
              "runs", "p50", "p99", "writes/window", "writes/lock");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(9, '-').c_str(),
              std::string(7, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(15, '-').c_str(), std::string(15, '-').c_str());
  for (int waiters : {1, 4, 16}) {
    const std::string address = "etcd://" + endpoints + "/bench/handoff" + std::to_string(waiters);
    Contender pidlock_side{
        [&] { return start({holder, address, "wait"}); },
        [](Child& c) {
          c.send("release");
          c.close_input();
        },
        "acquired"};
    Contender etcdctl_side{
        [&] {
          return start({"etcdctl", "--endpoints=" + endpoints, "lock", "--ttl=" + std::to_string(kEtcdctlTtl),
                        "/bench/etcdctl-handoff" + std::to_string(waiters)});
        },
        [](Child& c) { c.kill(SIGINT); },  // etcdctl lock unlocks on SIGINT
        ""};
    for (auto* side : {&pidlock_side, &etcdctl_side}) {
      HandoffResult r = handoff(cluster, *side, waiters, handoffs);
      if (r.latency.n == 0) return 1;
      std::printf("| %-44s | %7d | %5zu | %8.2f | %8.2f | %13.2f | %13.2f |\n",
                  side == &pidlock_side ? "pidlock holder -> next pidlock waiter" : "`etcdctl lock` -> next `etcdctl lock`",
                  waiters, r.latency.n, r.latency.p50, r.latency.p99, r.writes_per_window, r.writes_per_cycle);
      std::fflush(stdout);
    }
  }
  return 0;
}
