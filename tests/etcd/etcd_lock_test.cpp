// pidlock on etcd, against a real three-member etcd cluster on 127.0.0.1
// (started per test by EtcdLockTest) and real holder processes
// (pidlock_etcd_holder): exclusion with evidence, fencing tokens, lease
// expiry after SIGKILL and SIGSTOP, leader loss, total loss of the cluster.
#include "etcd/base64.hpp"
#include "etcd/client.hpp"
#include "etcd_fixture.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;
using pidlock_etcd_test::ask;
using pidlock_etcd_test::Clock;
using pidlock_etcd_test::seconds_since;
using pidlock_test::Child;
using pidlock_test::Stdio;
namespace etcd = pidlock::detail::etcd;

class EtcdLockTest : public pidlock_etcd_test::EtcdTest {};

// Acquire, conflict with the holder's evidence, release, and the state
// seen by inspect() at each step.
TEST_F(EtcdLockTest, AcquireConflictRelease) {
  const std::string address = cluster_.address("db", 5);
  EXPECT_EQ(manager_.inspect(address).verdict, pidlock::Verdict::kFree);
  EXPECT_EQ(manager_.inspect(address).reason, pidlock::Reason::kNoLockFile);

  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);
  ASSERT_GT(token, 0u);

  std::error_code ec;
  pidlock::Inspection seen;
  pidlock::LockHandle h = manager_.acquire(address, {}, ec, &seen);
  EXPECT_FALSE(h);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kHeld);
  EXPECT_EQ(seen.reason, pidlock::Reason::kPidAlive);
  ASSERT_TRUE(seen.holder);
  EXPECT_EQ(seen.holder->pid, holder->pid());
  EXPECT_EQ(seen.holder->status, "ready");
  ASSERT_TRUE(seen.lease);
  EXPECT_NE(seen.lease->lease_id, 0);
  EXPECT_EQ(seen.lease->fencing_token, token);
  EXPECT_GE(seen.lease->ttl_seconds, 1);
  EXPECT_LE(seen.lease->ttl_seconds, 5);
  EXPECT_NE(seen.detail.find("pid " + std::to_string(holder->pid())), std::string::npos) << seen.detail;

  // The throwing form carries the same evidence.
  try {
    (void)manager_.acquire(address);
    ADD_FAILURE() << "acquire of a held lock succeeded";
  } catch (const pidlock::LockHeldError& e) {
    EXPECT_EQ(e.holder().holder->pid, holder->pid());
  }

  pidlock::Inspection inspected = manager_.inspect(address);
  EXPECT_EQ(inspected.verdict, pidlock::Verdict::kHeld);
  ASSERT_TRUE(inspected.lease);
  EXPECT_EQ(inspected.lease->fencing_token, token);
  // A lease-based lock is never stale, so never broken.
  pidlock::BreakResult broken = manager_.break_stale(address);
  EXPECT_FALSE(broken.removed);
  EXPECT_EQ(broken.inspection.verdict, pidlock::Verdict::kHeld);

  // The command's JSON has the 64-bit ids as strings.
  std::string json;
  EXPECT_EQ(pidlock_etcd_test::run_pidlock({"status", "--json", address}, nullptr, 10s, &json), 0);
  EXPECT_NE(json.find("\"lease\":\"" + std::to_string(seen.lease->lease_id) + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"fencing_token\":\"" + std::to_string(token) + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"pid\":" + std::to_string(holder->pid())), std::string::npos) << json;

  EXPECT_EQ(ask(*holder, "release"), "released 0");
  EXPECT_EQ(manager_.inspect(address).verdict, pidlock::Verdict::kFree);

  h = manager_.acquire(address, {}, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(h.fencing_token());
  EXPECT_GT(*h.fencing_token(), token);
  EXPECT_EQ(h.path().string(), address);
  pidlock::Inspection own = manager_.inspect(address);
  EXPECT_EQ(own.reason, pidlock::Reason::kHeldByThisProcess);
  EXPECT_EQ(own.holder->pid, ::getpid());
  // A second acquire in the same process never breaks the first.
  pidlock::LockHandle again = manager_.acquire(address, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::already_held_by_this_process);
  EXPECT_TRUE(h.recheck());
  EXPECT_EQ(manager_.held_count(), 1u);
  EXPECT_FALSE(h.release());
  EXPECT_EQ(manager_.inspect(address).verdict, pidlock::Verdict::kFree);
}

TEST_F(EtcdLockTest, FencingTokenGrowsWithEachHolder) {
  const std::string address = cluster_.address("fenced", 5);
  std::uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    pidlock::LockHandle h = manager_.acquire(address);
    ASSERT_TRUE(h.fencing_token());
    EXPECT_GT(*h.fencing_token(), last);
    last = *h.fencing_token();
    // Writes to the key by its holder (status updates) keep the token.
    h.update_status("round" + std::to_string(round));
    EXPECT_EQ(*h.fencing_token(), last);
    EXPECT_EQ(manager_.inspect(address).holder->status, "round" + std::to_string(round));
    EXPECT_EQ(manager_.inspect(address).lease->fencing_token, last);
    EXPECT_FALSE(h.release());
    std::uint64_t child_token = 0;
    auto holder = start_holder(address, &child_token);
    EXPECT_GT(child_token, last);
    last = child_token;
    EXPECT_EQ(ask(*holder, "release"), "released 0");
  }
}

// A holder killed with SIGKILL cannot release: a waiter gets the lock when
// the lease expires, and not before.
TEST_F(EtcdLockTest, KilledHolderWaiterGetsLockAfterTtl) {
  constexpr int kTtl = 3;
  const std::string address = cluster_.address("killed", kTtl);
  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);
  holder->kill(SIGKILL);
  const auto killed = Clock::now();
  ASSERT_TRUE(holder->wait(pidlock_test::kPatience).has_value());
  // Dead, but the lease still runs: held, never stale.
  pidlock::Inspection right_after = manager_.inspect(address);
  EXPECT_EQ(right_after.verdict, pidlock::Verdict::kHeld);
  ASSERT_TRUE(right_after.lease);
  const std::int64_t ttl_left = right_after.lease->ttl_seconds;
  EXPECT_GE(ttl_left, 1);

  pidlock::AcquireOptions wait;
  wait.wait = true;
  wait.timeout = 15s;
  pidlock::LockHandle h = manager_.acquire(address, wait);
  const double elapsed = seconds_since(killed);
  ASSERT_TRUE(h);
  EXPECT_GT(*h.fencing_token(), token);
  // The holder renewed its lease at most TTL/3 before it died, so the lease
  // had between 2/3 TTL and TTL left; etcd reported `ttl_left` (rounded
  // down) just after the kill. The waiter must not have won before that.
  EXPECT_GE(elapsed, static_cast<double>(ttl_left) - 0.1) << "elapsed " << elapsed;
  EXPECT_GE(elapsed, kTtl * 2.0 / 3.0 - 0.2) << "elapsed " << elapsed;
  // etcd checks expiries every 500 ms; the watch wakes the waiter at once.
  EXPECT_LE(elapsed, kTtl + 2.0) << "elapsed " << elapsed;
  EXPECT_FALSE(h.took_over());
}

// A release hands the lock over at once, through the watch, not after a ttl.
TEST_F(EtcdLockTest, ReleaseWakesWaiterAtOnce) {
  const std::string address = cluster_.address("handoff", 10);
  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);
  std::atomic<bool> acquired{false};
  std::chrono::steady_clock::time_point got;
  std::thread waiter([&] {
    pidlock::AcquireOptions wait;
    wait.wait = true;
    wait.timeout = 8s;
    pidlock::LockManager m;
    pidlock::LockHandle h = m.acquire(address, wait);
    got = Clock::now();
    acquired = static_cast<bool>(h);
    EXPECT_GT(*h.fencing_token(), token);
  });
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(acquired.load());
  const auto released = Clock::now();
  EXPECT_EQ(ask(*holder, "release"), "released 0");
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_LT(std::chrono::duration<double>(got - released).count(), 1.0);
}

// A holder frozen past its ttl loses the lock to another process; when it
// runs again it learns of the loss, and its token is the older one.
TEST_F(EtcdLockTest, FrozenHolderLearnsItLostTheLock) {
  constexpr int kTtl = 2;
  const std::string address = cluster_.address("frozen", kTtl);
  std::uint64_t old_token = 0;
  auto frozen = start_holder(address, &old_token);
  frozen->kill(SIGSTOP);
  const auto stopped = Clock::now();

  pidlock::AcquireOptions wait;
  wait.wait = true;
  wait.timeout = 15s;
  pidlock::LockHandle h = manager_.acquire(address, wait);
  ASSERT_TRUE(h);
  EXPECT_GE(seconds_since(stopped), kTtl * 2.0 / 3.0 - 0.2);
  const std::uint64_t new_token = *h.fencing_token();
  EXPECT_GT(new_token, old_token);

  frozen->kill(SIGCONT);
  // Its LossMonitor reports the loss by itself...
  auto lost = frozen->read_line(5s);
  ASSERT_TRUE(lost) << "the frozen holder did not notice its loss";
  EXPECT_EQ(lost->rfind("lost ", 0), 0u) << *lost;
  // ...and its recheck agrees, with no error.
  EXPECT_EQ(ask(*frozen, "recheck"), "recheck 0 0");
  // Its release touches nothing of the new holder's.
  EXPECT_NE(ask(*frozen, "release"), "released 0");
  EXPECT_TRUE(h.recheck());
  EXPECT_EQ(manager_.inspect(address).lease->fencing_token, new_token);
}

// Killing the leader while a lock is held: the cluster elects another
// leader, which keeps the lease; the holder notices nothing.
TEST_F(EtcdLockTest, LeaderKilledLockSurvives) {
  constexpr int kTtl = 3;
  const int leader = cluster_.leader();
  ASSERT_GE(leader, 0);
  // The leader first in the address, so the holder's own connection (keep-
  // alives and watch) dies with it too and must fail over.
  const std::string address = cluster_.address("leader", kTtl, leader);
  pidlock::LockHandle h = manager_.acquire(address);
  const std::uint64_t token = *h.fencing_token();
  pidlock::LockWatch watch(h, 500ms);
  EXPECT_TRUE(watch.check());

  cluster_.kill_member(leader);
  const auto killed = Clock::now();
  while (seconds_since(killed) < 2.0 * kTtl) {
    ASSERT_TRUE(watch.check()) << watch.loss_reason();
    std::this_thread::sleep_for(200ms);
  }
  int new_leader = cluster_.leader();
  EXPECT_GE(new_leader, 0);
  EXPECT_NE(new_leader, leader);
  EXPECT_TRUE(h.recheck());
  EXPECT_FALSE(watch.wait_for_loss(100ms));
  pidlock::Inspection seen = manager_.inspect(address);
  EXPECT_EQ(seen.reason, pidlock::Reason::kHeldByThisProcess);
  EXPECT_EQ(seen.lease->fencing_token, token);
  EXPECT_FALSE(h.release());
  EXPECT_EQ(manager_.inspect(address).verdict, pidlock::Verdict::kFree);
}

// With every member down nothing can be seen: the verdict is unknown, which
// counts as held, never stale; and the holder itself gives up within its
// ttl, since it can no longer prove the lease alive.
TEST_F(EtcdLockTest, AllMembersDownMeansUnknownNeverStale) {
  constexpr int kTtl = 2;
  const std::string address = cluster_.address("down", kTtl);
  pidlock::LockHandle h = manager_.acquire(address);
  pidlock::LockWatch watch(h, 60s);
  cluster_.kill_all();
  const auto down = Clock::now();

  pidlock::Inspection seen = manager_.inspect(address);
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kUnknown);
  EXPECT_EQ(seen.reason, pidlock::Reason::kProbeFailed);
  EXPECT_NE(seen.detail.find(cluster_.endpoint(0)), std::string::npos) << seen.detail;
  pidlock::BreakResult broken = manager_.break_stale(address);
  EXPECT_FALSE(broken.removed);
  EXPECT_EQ(broken.inspection.verdict, pidlock::Verdict::kUnknown);

  std::uint64_t unused = 0;
  Child other = Child::spawn({PIDLOCK_ETCD_HOLDER, address}, Stdio::interactive());
  auto line = other.read_line();
  EXPECT_EQ(line.value_or(""), "held unknown probe-failed");
  (void)unused;

  std::error_code ec;
  pidlock::Inspection why;
  pidlock::AcquireOptions bounded;
  bounded.timeout = 700ms;
  const auto start = Clock::now();
  pidlock::LockHandle none = manager_.acquire(cluster_.address("down-too", kTtl), bounded, ec, &why);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(why.verdict, pidlock::Verdict::kUnknown);
  EXPECT_GE(seconds_since(start), 0.6);

  // Our own handle: the answer is open while the lease may live...
  std::error_code rc;
  EXPECT_FALSE(h.recheck(rc));
  EXPECT_TRUE(rc) << "an unreachable cluster must not read as a loss before the ttl";
  // ...and a loss once a whole ttl passed without a keep-alive.
  EXPECT_TRUE(watch.wait_for_loss(std::chrono::seconds(kTtl + 2)));
  EXPECT_LE(seconds_since(down), kTtl + 1.0);
  EXPECT_NE(watch.loss_reason().find("keep-alive"), std::string::npos) << watch.loss_reason();
  EXPECT_FALSE(h.recheck(rc));
  EXPECT_FALSE(rc);
}

TEST_F(EtcdLockTest, WaitUntilFreeTimesOutIsCancelledAndWakesOnRelease) {
  const std::string address = cluster_.address("waiting", 10);
  std::uint64_t token = 0;
  auto holder = start_holder(address, &token);

  std::error_code ec;
  auto start = Clock::now();
  pidlock::Inspection seen = manager_.wait_until_free(address, 500ms, nullptr, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kHeld);
  EXPECT_GE(seconds_since(start), 0.45);
  EXPECT_LT(seconds_since(start), 3.0);

  pidlock::Canceller canceller;
  std::thread cancel([&] {
    std::this_thread::sleep_for(300ms);
    canceller.cancel();
  });
  start = Clock::now();
  (void)manager_.wait_until_free(address, std::nullopt, &canceller, {}, ec);
  cancel.join();
  EXPECT_EQ(ec, pidlock::errc::cancelled);
  EXPECT_LT(seconds_since(start), 2.0);

  // A cancelled waiting acquire, too.
  pidlock::AcquireOptions wait;
  wait.wait = true;
  wait.canceller = &canceller;
  (void)manager_.acquire(address, wait, ec);
  EXPECT_EQ(ec, pidlock::errc::cancelled);
  canceller.reset();

  std::thread release([&] {
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(ask(*holder, "release"), "released 0");
  });
  start = Clock::now();
  seen = manager_.wait_until_free(address, 8s, nullptr, {}, ec);
  release.join();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kFree);
  EXPECT_LT(seconds_since(start), 2.0);
}

// Someone deletes the key (etcdctl del): the holder learns at once.
TEST_F(EtcdLockTest, DeletedKeyIsNoticedAtOnce) {
  const std::string address = cluster_.address("deleted", 10);
  pidlock::LockHandle h = manager_.acquire(address);
  pidlock::LockWatch watch(h);  // recheck interval 60 s: only the watch can tell
  etcd::Client client(etcd::Cluster::plain({cluster_.endpoint(1)}));
  // Every key of the lock: its queue lives under "NAME/".
  etcd::Reply r = client.call("/v3/kv/deleterange",
                              etcd::Json{{"key", etcd::base64_encode("/pidlock-test/deleted/")},
                                         {"range_end", etcd::base64_encode("/pidlock-test/deleted0")}});
  ASSERT_TRUE(r.ok()) << r.message;
  const auto deleted = Clock::now();
  EXPECT_TRUE(watch.wait_for_loss(5s));
  EXPECT_LT(seconds_since(deleted), 1.0);
  EXPECT_NE(watch.loss_reason().find("deleted"), std::string::npos) << watch.loss_reason();
  std::error_code ec;
  EXPECT_FALSE(h.recheck(ec));
  EXPECT_FALSE(ec);
  h.update_status("late", ec);
  EXPECT_EQ(ec, pidlock::errc::lock_lost);
  EXPECT_EQ(h.release(), pidlock::errc::lock_lost);
}

// A forked child never gives up its parent's lock (G5).
TEST_F(EtcdLockTest, ForkedChildNeverReleases) {
  const std::string address = cluster_.address("forked", 5);
  pidlock::LockHandle h = manager_.acquire(address);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only the handle's own path runs here: release() in a child must not
    // touch etcd (no revoke, no delete).
    std::error_code ec = h.release();
    ::_exit(ec ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(h.recheck());
  EXPECT_EQ(manager_.inspect(address).reason, pidlock::Reason::kHeldByThisProcess);
  EXPECT_FALSE(h.release());
}

}  // namespace
