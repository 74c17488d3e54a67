// Ownership that follows the processes: daemonizing servers (FreeBSD's
// pidfile(3) tests, ported), release of a file whose record someone else
// rewrote, locks that live as long as a process that inherited them,
// threads of one process waiting their turn. Real processes, real fork,
// daemon(3) and threads throughout.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace pidlock_test;
using namespace std::chrono_literals;
using pidlock::AcquireOptions;
using pidlock::LockHandle;
using pidlock::LockManager;

AcquireOptions waiting(std::chrono::milliseconds timeout = 20s) {
  AcquireOptions options;
  options.timeout = timeout;
  return options;
}

// Reaps `pid`, a descendant that the test process adopted as a subreaper.
int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// --- FreeBSD's pidfile(3) tests, ported -----------------------------------

// pidfile_uncontested: create, write our pid, remove.
TEST(Pidfile, Uncontested) {
  TempDir dir;
  const std::string path = dir / "uncontested.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  EXPECT_EQ(first_line(path), std::to_string(::getpid()));
  EXPECT_FALSE(lock.release());
  EXPECT_FALSE(exists(path));
}

// pidfile_self: a second open by the same process fails and names us.
TEST(Pidfile, Self) {
  TempDir dir;
  const std::string path = dir / "self.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  std::error_code ec;
  LockHandle again = manager.acquire(path, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::already_held_by_this_process);
  EXPECT_FALSE(again.held());
  EXPECT_EQ(first_line(path), std::to_string(::getpid()));
  EXPECT_EQ(manager.inspect(path).reason, pidlock::Reason::kHeldByThisProcess);
}

// pidfile_contested: a child holds it; our open fails and names the child.
TEST(Pidfile, Contested) {
  TempDir dir;
  const std::string path = dir / "contested.pid";
  Child child = Child::holder({"acquire", path});
  ASSERT_TRUE(child.read_line().value_or("").rfind("ready", 0) == 0);
  LockManager manager;
  std::error_code ec;
  pidlock::Inspection holder;
  LockHandle lock = manager.acquire(path, {}, ec, &holder);
  EXPECT_EQ(ec, pidlock::errc::held);
  ASSERT_TRUE(holder.holder);
  EXPECT_EQ(holder.holder->pid, child.pid());
}

// pidfile_inherited: we open it, fork, the child writes its pid (claim);
// our close removes nothing, and our new open fails naming the child. When
// the child ends cleanly, its release removes the file.
TEST(Pidfile, Inherited) {
  TempDir dir;
  const std::string path = dir / "inherited.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  Pipe go;
  Child child = Child::fork([&](int report) -> int {
    go.close_write();
    lock.claim();
    write_string(report, "claimed\n");
    wait_for_eof(go.read_end());
    return lock.release() ? 1 : 0;
  });
  go.close_read();
  ASSERT_EQ(child.read_line(), std::optional<std::string>("claimed"));
  EXPECT_EQ(first_line(path), std::to_string(child.pid()));
  EXPECT_FALSE(lock.release()) << "leaving a lock to the child that claimed it is no error";
  EXPECT_TRUE(exists(path)) << "the parent removed its child's lock";
  std::error_code ec;
  pidlock::Inspection holder;
  LockHandle again = manager.acquire(path, {}, ec, &holder);
  EXPECT_EQ(ec, pidlock::errc::held);
  ASSERT_TRUE(holder.holder);
  EXPECT_EQ(holder.holder->pid, child.pid());
  go.close_write();
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_FALSE(exists(path)) << "the child's clean release removes the file";
  LockHandle next = manager.acquire(path);
  EXPECT_FALSE(next.took_over()) << "a clean shutdown is not a crash";
}

// pidfile_relative: a relative path is created where it says, and names
// us; the handle reports it absolute.
TEST(Pidfile, Relative) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir / "sub").c_str(), 0700), 0);
  Child child = Child::fork([&](int report) -> int {
    if (::chdir(dir.path().c_str()) != 0) return 1;
    LockManager manager;
    LockHandle lock = manager.acquire("sub/relative.pid");
    write_string(report, lock.path().string() + "\n");
    write_string(report, first_line(dir / "sub/relative.pid") + "\n");
    return lock.release() ? 2 : 0;
  });
  EXPECT_EQ(child.read_line(), std::optional<std::string>(dir / "sub/relative.pid"));
  EXPECT_EQ(child.read_line(), std::optional<std::string>(std::to_string(child.pid())));
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_FALSE(exists(dir / "sub/relative.pid"));
}

// --- daemon(3)-style servers ------------------------------------------------

const char* daemon_program() { return PIDLOCK_TEST_DAEMON; }

// The server detaches (its parent leaves main normally, or _exits inside
// daemon(3)); the daemon holds the lock under its own pid, a second start
// is refused naming it, and its clean shutdown removes the file, so that
// the next start is no take-over.
class Daemonize : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
};

TEST_P(Daemonize, TheDaemonOwnsTheLockAndItsCleanShutdownRemovesIt) {
  TempDir dir;
  const std::string path = dir / "daemon.pid";
  Child start = Child::spawn({daemon_program(), path, GetParam()});
  std::optional<std::string> said = start.read_line();
  ASSERT_TRUE(said && said->rfind("daemon ", 0) == 0) << said.value_or("(nothing)");
  const pid_t daemon = static_cast<pid_t>(std::stol(said->substr(7)));
  EXPECT_EQ(exit_code(start.wait()), 0);
  EXPECT_NE(daemon, start.pid());

  EXPECT_EQ(first_line(path), std::to_string(daemon)) << "the record names the daemon";
  LockManager manager;
  pidlock::Inspection seen = manager.inspect(path);
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kHeld);
  Child second = Child::spawn({daemon_program(), path, GetParam()});
  EXPECT_EQ(second.read_line(), std::optional<std::string>("held " + std::to_string(daemon)));
  EXPECT_EQ(exit_code(second.wait()), 2);

  ASSERT_EQ(::kill(daemon, SIGTERM), 0);
  EXPECT_EQ(exit_code(reap(daemon)), 0);
  EXPECT_FALSE(exists(path)) << "the daemon's clean shutdown left its lock file";
  LockHandle next = manager.acquire(path);
  EXPECT_FALSE(next.took_over()) << "a clean restart was reported as a crash";
}

TEST_P(Daemonize, ADaemonKilledLeavesAStaleLockTheNextStartTakesOver) {
  TempDir dir;
  const std::string path = dir / "daemon.pid";
  Child start = Child::spawn({daemon_program(), path, GetParam()});
  std::optional<std::string> said = start.read_line();
  ASSERT_TRUE(said && said->rfind("daemon ", 0) == 0) << said.value_or("(nothing)");
  const pid_t daemon = static_cast<pid_t>(std::stol(said->substr(7)));
  EXPECT_EQ(exit_code(start.wait()), 0);
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  reap(daemon);
  LockManager manager;
  LockHandle next = manager.acquire(path);
  EXPECT_TRUE(next.took_over());
  ASSERT_TRUE(next.previous_holder() && next.previous_holder()->holder);
  EXPECT_EQ(next.previous_holder()->holder->pid, daemon);
}

INSTANTIATE_TEST_SUITE_P(Flows, Daemonize, ::testing::Values("fork-return", "fork-wait", "daemon3"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// --- release only what is still ours -----------------------------------------

TEST(ReleaseOwnRecord, ARecordRewrittenBySomeoneElseIsNotRemovedAndTheLockIsReportedLost) {
  TempDir dir;
  const std::string path = dir / "rewritten.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  const pid_t stranger = dead_pid();
  const std::string foreign = std::to_string(stranger) + "\n" + dir.path() + "\n" + std::to_string(now()) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, foreign.data(), foreign.size(), 0), static_cast<ssize_t>(foreign.size()));
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(foreign.size())), 0);
  ::close(fd);
  EXPECT_EQ(lock.release(), pidlock::errc::lock_lost);
  EXPECT_TRUE(exists(path)) << "release removed a file whose record is not ours";
  EXPECT_EQ(read_file(path), foreign);
}

// A forked child that shares the lock and rewrites its status keeps the
// record naming our holder: the release still removes it.
TEST(ReleaseOwnRecord, AStatusRewrittenByAForkedChildStillCountsAsOurs) {
  TempDir dir;
  const std::string path = dir / "status.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  Child child = Child::fork([&](int) -> int {
    std::error_code ec;
    lock.update_status("busy", ec);
    return ec ? 1 : 0;
  });
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_NE(read_file(path).find("status=busy"), std::string::npos);
  EXPECT_FALSE(lock.release());
  EXPECT_FALSE(exists(path));
}

// --- a lock lives as long as any process that inherited it -------------------

TEST(InheritedShare, AForkedChildKeepsTheLockAfterItsParentReleasesAndItsExitFreesIt) {
  TempDir dir;
  const std::string path = dir / "shared.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  Pipe go;
  Child child = Child::fork([&](int) -> int {  // keeps the share it inherited
    go.close_write();
    wait_for_eof(go.read_end());
    return 0;
  });
  go.close_read();
  EXPECT_FALSE(lock.release());
  EXPECT_TRUE(exists(path));
  EXPECT_TRUE(kernel_lock_held(path)) << "the child's share was dropped";
  std::error_code ec;
  LockHandle refused = manager.acquire(path, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held);
  go.close_write();
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_FALSE(kernel_lock_held(path));
  LockHandle next = manager.acquire(path);
  EXPECT_FALSE(next.took_over()) << "its owner released it: no recovery is due";
}

// A forked child that acquires a lock its parent held at the fork gives its
// inherited share up first; otherwise it would wait for itself.
TEST(InheritedShare, AForkedChildWaitingForItsParentsLockGetsItWhenTheParentReleases) {
  TempDir dir;
  const std::string path = dir / "parent.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  Child child = Child::fork([&](int report) -> int {
    LockManager mine;
    std::error_code ec;
    LockHandle got = mine.acquire(path, waiting(), ec);
    if (ec) return 1;
    write_string(report, "got " + first_line(path) + "\n");
    return got.release() ? 2 : 0;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(lock.release());
  EXPECT_EQ(child.read_line(), std::optional<std::string>("got " + std::to_string(child.pid())));
  EXPECT_EQ(exit_code(child.wait()), 0);
}

// --- threads ------------------------------------------------------------------

TEST(Threads, WaitingAcquiresFromManyThreadsAllSucceedOneAtATime) {
  TempDir dir;
  const std::string path = dir / "threads.pid";
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  LockManager manager;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        std::error_code ec;
        LockHandle lock = manager.acquire(path, waiting(60s), ec);
        if (ec) {
          refused.fetch_add(1);
          continue;
        }
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        std::this_thread::yield();
        inside.fetch_sub(1);
        if (lock.release()) refused.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_FALSE(exists(path));
}

TEST(Threads, TheAcquiringThreadAskingAgainIsRefusedNotLeftWaitingForItself) {
  TempDir dir;
  const std::string path = dir / "reentrant.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  std::error_code ec;
  LockHandle again = manager.acquire(path, waiting(30s), ec);
  EXPECT_EQ(ec, pidlock::errc::already_held_by_this_process);
}

TEST(Threads, ANonWaitingAcquireFromAnotherThreadIsRefused) {
  TempDir dir;
  const std::string path = dir / "other.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  std::error_code ec;
  std::thread([&] { LockHandle h = manager.acquire(path, {}, ec); }).join();
  EXPECT_EQ(ec, pidlock::errc::already_held_by_this_process);
}

TEST(Threads, AnotherThreadsWaitEndsAtItsDeadlineOrWhenCancelled) {
  TempDir dir;
  const std::string path = dir / "deadline.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  std::error_code timed;
  std::thread([&] { LockHandle h = manager.acquire(path, waiting(200ms), timed); }).join();
  EXPECT_EQ(timed, pidlock::errc::held);

  pidlock::Canceller cancel;
  AcquireOptions options;
  options.wait = true;
  options.canceller = &cancel;
  std::error_code cancelled;
  std::thread waiter([&] { LockHandle h = manager.acquire(path, options, cancelled); });
  std::this_thread::sleep_for(100ms);
  cancel.cancel();
  waiter.join();
  EXPECT_EQ(cancelled, pidlock::errc::cancelled);
  EXPECT_TRUE(lock.held());
}

// --- every method from any thread ----------------------------------------------

TEST(ThreadSafety, OneHandleUsedFromManyThreadsWhileAnotherReleasesIt) {
  TempDir dir;
  const std::string path = dir / "shared-handle.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (!stop.load()) {
        std::error_code ec;
        switch (t) {
          case 0: lock.update_status("busy", ec); break;
          case 1: (void)lock.recheck(ec); break;
          case 2: lock.touch(ec); break;
          default:
            (void)lock.native_handle();
            (void)lock.path();
            try {
              (void)lock.record();
            } catch (const pidlock::Error& e) {
              if (e.code() != pidlock::errc::not_held) unexpected.fetch_add(1);
            }
            break;
        }
        if (ec && ec != pidlock::errc::not_held) unexpected.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(lock.release());
  std::this_thread::sleep_for(20ms);
  stop.store(true);
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_FALSE(lock.held());
  EXPECT_FALSE(exists(path));
}

TEST(ThreadSafety, OneWatchCheckedFromManyThreadsSeesOneLoss) {
  TempDir dir;
  const std::string path = dir / "watched.pid";
  LockManager manager;
  LockHandle lock = manager.acquire(path);
  pidlock::LockWatch watch(lock, 50ms);
  std::atomic<int> saw_loss{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      if (watch.wait_for_loss(10s)) saw_loss.fetch_add(1);
      if (watch.loss_reason().empty()) saw_loss.fetch_add(100);
    });
  }
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  for (auto& th : threads) th.join();
  EXPECT_EQ(saw_loss.load(), 4);
  EXPECT_TRUE(watch.lost());
}

TEST(ThreadSafety, OneManagerAcquiringAndReleasingFromManyThreads) {
  TempDir dir;
  LockManager manager;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 50; ++r) {
        std::error_code ec;
        LockHandle lock = manager.acquire(dir / ("m" + std::to_string(t) + ".pid"), {}, ec);
        if (ec) failures.fetch_add(1);
        (void)manager.held_count();
        if (r % 10 == 0) (void)manager.touch_all();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_FALSE(manager.release_all());
  EXPECT_EQ(manager.held_count(), 0u);
}

}  // namespace
