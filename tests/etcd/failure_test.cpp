// The failure detector against real faults: a holder always
// learns that its lock is lost before any other process can hold it, and
// a healthy holder does not lose its lock to one frozen member.
//
// Every test runs a real three-member cluster, real holder processes and,
// where the network must fail, fault proxies (fault_proxy.hpp) between a
// holder and the members. "Before" is measured on the shared monotonic
// clock: the holder's "lost T1" against the next holder's "acquired T2",
// and T2 must trail T1 by at least a sixth of the ttl (the detector gives
// up a third of the ttl before etcd can let anyone in; T2 is when the next
// holder's acquire returned, an upper bound of when it got the lock).
#include "etcd_fixture.hpp"
#include "fault_proxy.hpp"

#include <signal.h>

#include <memory>
#include <thread>

namespace pidlock_etcd_test {
namespace {

using namespace std::chrono_literals;

class EtcdFailureTest : public EtcdTest {
 protected:
  // One proxy per member, for a holder whose traffic the test controls.
  void make_proxies() {
    for (int i = 0; i < cluster_.size(); ++i) proxies_.push_back(std::make_unique<FaultProxy>(cluster_.client_port(i)));
  }
  std::string proxied_endpoints() const {
    std::string out;
    for (const auto& p : proxies_) out += (out.empty() ? "" : ",") + p->endpoint();
    return out;
  }
  void all_proxies(void (FaultProxy::*action)()) {
    for (auto& p : proxies_) ((*p).*action)();
  }

  // Reads the holder's "lost" line and the waiter's "acquired" line and
  // checks that the loss came first, by at least ttl/6.
  void expect_loss_before_takeover(Child& holder, Child& waiter, int ttl, std::uint64_t old_token,
                                   std::chrono::seconds within) {
    auto lost = holder.read_line(within);
    ASSERT_TRUE(lost) << "the holder never reported its loss";
    HolderLine l = parse_holder_line(*lost);
    ASSERT_EQ(l.word, "lost") << *lost;
    auto got = waiter.read_line(within);
    ASSERT_TRUE(got) << "the waiter never got the lock";
    HolderLine a = parse_holder_line(*got);
    ASSERT_EQ(a.word, "acquired") << *got;
    EXPECT_GT(static_cast<std::uint64_t>(a.a), old_token);
    const double lead = (a.b - l.a) / 1e9;
    EXPECT_GE(lead, ttl / 6.0) << "the holder learnt of its loss " << lead << " s before the next holder had the lock ("
                               << l.rest << ")";
  }

  std::vector<std::unique_ptr<FaultProxy>> proxies_;
};

// A holder cut off from every member by a partition (the proxies swallow
// its traffic, TCP-style) gives up in time; a waiter on the healthy side
// gets the lock only afterwards, with a larger token.
TEST_F(EtcdFailureTest, PartitionedHolderLearnsOfTheLossFirst) {
  constexpr int kTtl = 3;
  make_proxies();
  std::uint64_t token = 0;
  auto holder = start_holder(cluster_.address_via(proxied_endpoints(), "partition", kTtl), &token);
  auto waiter = start_holder_process(cluster_.address("partition", kTtl), /*wait=*/true);
  std::this_thread::sleep_for(300ms);  // queued
  all_proxies(&FaultProxy::drop);
  const auto cut = Clock::now();
  expect_loss_before_takeover(*holder, *waiter, kTtl, token, std::chrono::seconds(3 * kTtl));
  // Reported within 2/3 ttl of the last renewal, so within the ttl of the cut.
  EXPECT_LT(seconds_since(cut), 2.0 * kTtl);
  all_proxies(&FaultProxy::pass);
  EXPECT_NE(ask(*holder, "recheck"), "recheck 1 0");
  EXPECT_NE(ask(*holder, "release"), "released 0");
  EXPECT_EQ(ask(*waiter, "recheck"), "recheck 1 0");
}

// Latency well inside the margin costs nothing; latency beyond it is a
// partition, and is treated as one.
TEST_F(EtcdFailureTest, DelayedTrafficKeepsTheLockUntilItOutgrowsTheMargin) {
  constexpr int kTtl = 3;
  make_proxies();
  std::uint64_t token = 0;
  auto holder = start_holder(cluster_.address_via(proxied_endpoints(), "delay", kTtl), &token);
  for (auto& p : proxies_) p->delay(150ms);  // 300 ms round trips
  EXPECT_FALSE(holder->read_line(std::chrono::seconds(2 * kTtl))) << "lost the lock to 300 ms of latency";
  EXPECT_EQ(ask(*holder, "recheck"), "recheck 1 0");
  auto waiter = start_holder_process(cluster_.address("delay", kTtl), /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  for (auto& p : proxies_) p->delay(std::chrono::milliseconds(4000));
  expect_loss_before_takeover(*holder, *waiter, kTtl, token, std::chrono::seconds(3 * kTtl));
}

// A frozen member (SIGSTOP: its kernel still accepts connections, nothing
// answers) is where the holder's and the waiter's connections go first.
// The holder keeps its lock; the waiter's watch moves to a live member and
// sees the release within seconds.
TEST_F(EtcdFailureTest, FrozenFollowerNeitherTakesTheLockNorStrandsAWaiter) {
  constexpr int kTtl = 3;
  const int leader = cluster_.leader();
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % cluster_.size();
  std::uint64_t token = 0;
  auto holder = start_holder(cluster_.address("frozen-follower", kTtl, follower), &token);
  auto waiter = start_holder_process(cluster_.address("frozen-follower", kTtl, follower), /*wait=*/true);
  std::this_thread::sleep_for(500ms);  // queued, watching through the follower
  cluster_.stop_member(follower);
  EXPECT_FALSE(holder->read_line(std::chrono::seconds(2 * kTtl))) << "the holder lost its lock to a frozen follower";
  EXPECT_FALSE(waiter->read_line(100ms)) << "the waiter got a held lock";
  EXPECT_EQ(ask(*holder, "recheck"), "recheck 1 0");
  const auto released = Clock::now();
  EXPECT_EQ(ask(*holder, "release"), "released 0");
  auto got = waiter->read_line(std::chrono::seconds(10));
  ASSERT_TRUE(got) << "the waiter stayed stranded on the frozen member";
  EXPECT_EQ(parse_holder_line(*got).word, "acquired") << *got;
  // A probe interval, its timeout and a new watch, not a ttl or more.
  EXPECT_LT(seconds_since(released), 4.0);
  cluster_.continue_member(follower);
}

// The leader freezes: the others elect a new one, which keeps the lease;
// the holder keeps its lock and nobody else gets it meanwhile. A second
// holder, whose only endpoint is the frozen leader, is cut off with it: it
// reports its loss before a waiter on the other members gets its lock.
TEST_F(EtcdFailureTest, FrozenLeaderCostsNoLockAndLetsNobodyIn) {
  constexpr int kTtl = 5;
  const int leader = cluster_.leader();
  ASSERT_GE(leader, 0);
  const std::string others = cluster_.endpoint((leader + 1) % 3) + "," + cluster_.endpoint((leader + 2) % 3);
  std::uint64_t token = 0, stranded_token = 0;
  auto holder = start_holder(cluster_.address("frozen-leader", kTtl, leader), &token);
  auto waiter = start_holder_process(cluster_.address("frozen-leader", kTtl, (leader + 1) % 3), /*wait=*/true);
  auto stranded = start_holder(cluster_.address_via(cluster_.endpoint(leader), "leader-only", kTtl), &stranded_token);
  auto other = start_holder_process(cluster_.address_via(others, "leader-only", kTtl), /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  cluster_.stop_member(leader);
  const auto frozen = Clock::now();
  EXPECT_FALSE(holder->read_line(std::chrono::seconds(6))) << "the holder lost its lock to a frozen leader";
  EXPECT_FALSE(waiter->read_line(100ms)) << "the waiter got a held lock";
  EXPECT_GE(seconds_since(frozen), 6.0);
  int now_leader = cluster_.leader();
  EXPECT_GE(now_leader, 0);
  EXPECT_NE(now_leader, leader);
  EXPECT_EQ(ask(*holder, "recheck"), "recheck 1 0");
  EXPECT_EQ(ask(*holder, "release"), "released 0");
  auto got = waiter->read_line(std::chrono::seconds(5));
  ASSERT_TRUE(got);
  EXPECT_EQ(parse_holder_line(*got).word, "acquired") << *got;

  auto lost = stranded->read_line(std::chrono::seconds(2 * kTtl));
  ASSERT_TRUE(lost) << "the holder cut off with the leader never reported its loss";
  HolderLine l = parse_holder_line(*lost);
  EXPECT_EQ(l.word, "lost") << *lost;
  auto taken = other->read_line(std::chrono::seconds(3 * kTtl));
  ASSERT_TRUE(taken) << "the lock of the holder cut off with the leader was never taken over";
  HolderLine a = parse_holder_line(*taken);
  ASSERT_EQ(a.word, "acquired") << *taken;
  EXPECT_GT(static_cast<std::uint64_t>(a.a), stranded_token);
  EXPECT_GE((a.b - l.a) / 1e9, kTtl / 6.0);
  cluster_.continue_member(leader);
}

// Two of three members frozen: no quorum, no renewal. The holder gives up
// in time; the waiter gets the lock only once quorum is back and the
// holder's lease has run out.
TEST_F(EtcdFailureTest, LostQuorumHolderLearnsOfTheLossFirst) {
  constexpr int kTtl = 3;
  std::uint64_t token = 0;
  auto holder = start_holder(cluster_.address("quorum", kTtl), &token);
  auto waiter = start_holder_process(cluster_.address("quorum", kTtl, 2), /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  cluster_.stop_member(0);
  cluster_.stop_member(1);
  auto lost = holder->read_line(std::chrono::seconds(2 * kTtl));
  ASSERT_TRUE(lost) << "no loss reported without quorum";
  HolderLine l = parse_holder_line(*lost);
  EXPECT_EQ(l.word, "lost");
  EXPECT_FALSE(waiter->read_line(500ms)) << "the lock was taken without quorum";
  cluster_.continue_member(0);
  cluster_.continue_member(1);
  auto got = waiter->read_line(std::chrono::seconds(5 * kTtl));
  ASSERT_TRUE(got);
  HolderLine a = parse_holder_line(*got);
  ASSERT_EQ(a.word, "acquired") << *got;
  EXPECT_GT(static_cast<std::uint64_t>(a.a), token);
  EXPECT_GE((a.b - l.a) / 1e9, kTtl / 6.0);
}

// Every member killed, then started again on the same data: the lease
// survives the restart (etcd keeps it in its store and restarts its clock),
// the holder has given up long before, and the waiter, which kept trying,
// gets the lock when the lease ends.
TEST_F(EtcdFailureTest, AllMembersKilledAndRestarted) {
  constexpr int kTtl = 3;
  std::uint64_t token = 0;
  auto holder = start_holder(cluster_.address("restart", kTtl), &token);
  auto waiter = start_holder_process(cluster_.address("restart", kTtl), /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  cluster_.kill_all();
  auto lost = holder->read_line(std::chrono::seconds(2 * kTtl));
  ASSERT_TRUE(lost) << "no loss reported with every member dead";
  HolderLine l = parse_holder_line(*lost);
  EXPECT_EQ(l.word, "lost");
  std::string problem;
  for (int i = 0; i < cluster_.size(); ++i) ASSERT_TRUE(cluster_.restart_member(i, &problem)) << problem;
  ASSERT_TRUE(cluster_.wait_healthy(&problem, std::chrono::seconds(20))) << problem;
  auto got = waiter->read_line(std::chrono::seconds(5 * kTtl));
  ASSERT_TRUE(got) << "the waiter did not get the lock after the restart";
  HolderLine a = parse_holder_line(*got);
  ASSERT_EQ(a.word, "acquired") << *got;
  EXPECT_GT(static_cast<std::uint64_t>(a.a), token);
  EXPECT_GE((a.b - l.a) / 1e9, kTtl / 6.0);
  EXPECT_EQ(ask(*waiter, "release"), "released 0");
}

}  // namespace
}  // namespace pidlock_etcd_test
