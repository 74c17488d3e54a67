// LockManager::wait_until_free: woken by a release (kFree) or a death
// (kStale), bounded by its deadline (errc::held with the last verdict), and
// never taking the lock itself.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>

namespace {

using namespace pidlock_test;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using pidlock::errc;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Verdict;
using Clock = std::chrono::steady_clock;

TEST(WaitUntilFree, ReturnsFreeWhenTheHolderReleases) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  LockManager manager;
  std::error_code ec;
  std::future<bool> released = when_this_thread_waits([&] { EXPECT_TRUE(holder.release()); });
  Inspection seen = manager.wait_until_free(path, 20s, nullptr, {}, ec);
  EXPECT_TRUE(released.get()) << "wait_until_free never blocked in poll()";
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(seen.verdict, Verdict::kFree);
  EXPECT_FALSE(exists(path)) << "wait_until_free created the lock file";
  EXPECT_EQ(manager.held_count(), 0u);
}

TEST(WaitUntilFree, ReturnsStaleWhenTheHolderIsKilledAndLeavesTheLockToOthers) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  const pid_t holder_pid = holder.pid();
  LockManager manager;
  std::error_code ec;
  std::future<bool> killed = when_this_thread_waits([&] { holder.kill(); });
  Inspection seen = manager.wait_until_free(path, 20s, nullptr, {}, ec);
  EXPECT_TRUE(killed.get()) << "wait_until_free never blocked in poll()";
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(seen.verdict, Verdict::kStale);
  ASSERT_TRUE(seen.holder);
  EXPECT_EQ(seen.holder->pid, holder_pid);
  EXPECT_TRUE(exists(path)) << "the stale file was removed by a wait";
  EXPECT_EQ(manager.held_count(), 0u);

  // Another process can take it over: the wait kept no lock on it.
  Pipe report;
  Child next = Child::fork([&]() -> int {
    report.close_read();
    LockManager m;
    std::error_code e;
    LockHandle h = m.acquire(path, {}, e);
    if (e) return 1;
    write_line(report.write_end(), std::to_string(h.took_over() ? h.previous_holder()->holder->pid : 0));
    return 0;
  });
  report.close_write();
  EXPECT_EQ(read_line(report.read_end()), std::to_string(holder_pid));
  EXPECT_TRUE(next.exited_with(0));
}

TEST(WaitUntilFree, TimesOutWithTheLastVerdict) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  LockManager manager;
  std::error_code ec;
  auto start = Clock::now();
  Inspection seen = manager.wait_until_free(path, 300ms, nullptr, {}, ec);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(ec, errc::held);
  EXPECT_EQ(seen.verdict, Verdict::kHeld);
  ASSERT_TRUE(seen.holder);
  EXPECT_EQ(seen.holder->pid, holder.pid());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 5s) << "sanity bound only";
  EXPECT_TRUE(holder.release()) << "the wait disturbed the holder";
}

TEST(WaitUntilFree, ACancelledWaitReportsCancelled) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  LockManager manager;
  pidlock::Canceller canceller;
  std::error_code ec;
  std::future<bool> cancelled = when_this_thread_waits([&] { canceller.cancel(); });
  Inspection seen = manager.wait_until_free(path, 20s, &canceller, {}, ec);
  EXPECT_TRUE(cancelled.get());
  EXPECT_EQ(ec, errc::cancelled);
  EXPECT_EQ(seen.verdict, Verdict::kHeld);
  EXPECT_TRUE(holder.release());
}

TEST(WaitUntilFree, AFreePathReturnsAtOnceAndCreatesNothing) {
  TempDir dir;
  LockManager manager;
  std::error_code ec;
  Inspection seen = manager.wait_until_free(dir / "postmaster.pid", 20s, nullptr, {}, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(seen.verdict, Verdict::kFree);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
}

}  // namespace
