// Waiting in etcd's lock recipe: first come, first served, one
// raft write per hand-off, and `etcdctl lock` in the same queue.
#include "etcd_fixture.hpp"

#include <signal.h>

#include <thread>

namespace pidlock_etcd_test {
namespace {

using namespace std::chrono_literals;

class EtcdQueueTest : public EtcdTest {};

// Four waiters queue one after the other behind a holder. Each release
// wakes exactly the next in line (the others stay asleep), and the whole
// chain costs one raft write per release: the revoke. The thundering herd
// this replaced cost a grant, a transaction and a revoke per waiter per
// hand-off.
TEST_F(EtcdQueueTest, WaitersAreServedInArrivalOrderWithOneWritePerHandOff) {
  const std::string address = cluster_.address("fifo", 10);
  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);
  std::vector<std::unique_ptr<Child>> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.push_back(start_holder_process(address, /*wait=*/true));
    std::this_thread::sleep_for(300ms);  // queued before the next one comes
  }
  pidlock::Inspection seen = manager_.inspect(address);
  EXPECT_NE(seen.detail.find("4 contenders wait"), std::string::npos) << seen.detail;

  const long long before = cluster_.proposals_committed();
  ASSERT_GE(before, 0);
  EXPECT_EQ(ask(*holder, "release"), "released 0");
  std::uint64_t last = token;
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    auto got = waiters[i]->read_line(5s);
    ASSERT_TRUE(got) << "waiter " << i << " was not served";
    HolderLine a = parse_holder_line(*got);
    ASSERT_EQ(a.word, "acquired") << *got;
    EXPECT_GT(static_cast<std::uint64_t>(a.a), last);
    last = static_cast<std::uint64_t>(a.a);
    // Nobody behind it was woken into holding it.
    for (std::size_t j = i + 1; j < waiters.size(); ++j)
      EXPECT_FALSE(waiters[j]->read_line(50ms)) << "waiter " << j << " got the lock out of turn";
    EXPECT_EQ(ask(*waiters[i], "release"), "released 0");
  }
  const long long writes = cluster_.proposals_committed() - before;
  // Five releases (the holder's and each waiter's): five revokes.
  EXPECT_LE(writes, 5) << writes << " raft writes for 4 hand-offs and a release";
  EXPECT_EQ(manager_.inspect(address).verdict, pidlock::Verdict::kFree);
}

// A non-waiting try never jumps the queue: with a holder and a waiter
// queued, the try fails even in the instant between a release and the
// waiter's wake-up.
TEST_F(EtcdQueueTest, ATryNeverJumpsTheQueue) {
  const std::string address = cluster_.address("nojump", 10);
  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);
  auto waiter = start_holder_process(address, /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  holder->send("release");
  for (int i = 0; i < 20; ++i) {
    std::error_code ec;
    pidlock::LockHandle h = manager_.acquire(address, {}, ec);
    EXPECT_EQ(ec, pidlock::errc::held) << "try " << i;
  }
  auto got = waiter->read_line(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(parse_holder_line(*got).word, "acquired") << *got;
}

// `etcdctl lock NAME` and pidlock on etcd://.../NAME use the same keys:
// each excludes the other, and pidlock's status sees etcdctl's holder.
TEST_F(EtcdQueueTest, EtcdctlLockAndPidlockExcludeEachOther) {
  const std::string address = cluster_.address("interop", 10);
  const std::string name = "/pidlock-test/interop";
  std::vector<std::string> lock = cluster_.etcdctl();
  lock.insert(lock.end(), {"lock", name});

  Child etcdctl = Child::spawn(lock, Stdio::interactive());
  auto key = etcdctl.read_line(10s);
  ASSERT_TRUE(key) << "etcdctl lock did not get the free lock";
  EXPECT_EQ(key->rfind(name + "/", 0), 0u) << *key;
  pidlock::Inspection seen = manager_.inspect(address);
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kHeld);
  EXPECT_EQ(seen.reason, pidlock::Reason::kLeaseAlive);
  EXPECT_FALSE(seen.holder);
  ASSERT_TRUE(seen.lease);
  EXPECT_GT(seen.lease->fencing_token, 0u);
  EXPECT_NE(seen.detail.find("etcdctl"), std::string::npos) << seen.detail;
  std::error_code ec;
  (void)manager_.acquire(address, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held);
  std::string err;
  EXPECT_EQ(run_pidlock({"status", address}), 0);
  EXPECT_EQ(run_pidlock({"run", address, "--", "true"}, &err), 75) << err;

  // pidlock queues behind etcdctl and gets the lock when etcdctl lets go.
  auto waiter = start_holder_process(address, /*wait=*/true);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(waiter->read_line(200ms));
  etcdctl.kill(SIGINT);  // etcdctl lock unlocks on SIGINT
  auto got = waiter->read_line(5s);
  ASSERT_TRUE(got);
  HolderLine a = parse_holder_line(*got);
  ASSERT_EQ(a.word, "acquired") << *got;
  EXPECT_GT(static_cast<std::uint64_t>(a.a), seen.lease->fencing_token);
  etcdctl.wait(kPatience);

  // etcdctl queues behind pidlock.
  etcdctl = Child::spawn(lock, Stdio::interactive());
  EXPECT_FALSE(etcdctl.read_line(1500ms)) << "etcdctl lock got a lock pidlock holds";
  EXPECT_EQ(ask(*waiter, "release"), "released 0");
  key = etcdctl.read_line(5s);
  ASSERT_TRUE(key) << "etcdctl lock was not served after pidlock's release";
  EXPECT_EQ(key->rfind(name + "/", 0), 0u) << *key;
  etcdctl.kill(SIGINT);
  etcdctl.wait(kPatience);
}

}  // namespace
}  // namespace pidlock_etcd_test
