// Rules 1, 2, 3, 11, 12, 13: acquiring a fresh lock, a lock held by a live
// process, a lock whose holder was SIGKILLed, re-acquiring in the same
// process, losing the lock file, and forked children.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::AcquireOptions;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

// Restores the umask at scope exit.
struct UmaskScope {
  explicit UmaskScope(mode_t m) : old(::umask(m)) {}
  ~UmaskScope() { ::umask(old); }
  mode_t old;
};

// Starts pidlock_test_holder holding `lock`; fails the test unless it
// reports "ready <pid> <fd>".
Child start_holder(const std::string& lock) {
  Child holder = Child::holder({"acquire", lock});
  auto line = holder.read_line();
  EXPECT_TRUE(line && line->rfind("ready " + std::to_string(holder.pid()) + " ", 0) == 0)
      << (line ? *line : std::string("(no report)"));
  return holder;
}

class FreshAcquire : public ::testing::TestWithParam<mode_t> {};

TEST_P(FreshAcquire, CreatesMode0600RecordOfThisProcessAndReleaseRemovesIt) {
  TempDir dir;
  const std::string lock = dir / "test.pid";
  UmaskScope umask_scope(GetParam());
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.held());
  EXPECT_FALSE(handle.took_over());
  EXPECT_FALSE(handle.previous_holder());

  struct stat st {};
  ASSERT_EQ(::lstat(lock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "umask " << std::oct << GetParam();
  EXPECT_EQ(st.st_nlink, 1u);

  const std::string bytes = read_file(lock);
  EXPECT_EQ(bytes.substr(0, bytes.find('\n')), std::to_string(::getpid())) << "line 1 is the pid alone";
  pidlock::ParsedRecord parsed = pidlock::parse_record(bytes);
  ASSERT_TRUE(parsed.record) << parsed.problem;
  const pidlock::HolderRecord& rec = *parsed.record;
  EXPECT_EQ(rec.format, pidlock::RecordFormat::kPidlock);
  EXPECT_EQ(rec.format_version, 1u);
  std::vector<std::string> lines;
  for (size_t at = 0; at < bytes.size();) {
    size_t nl = bytes.find('\n', at);
    lines.push_back(bytes.substr(at, nl - at));
    at = nl == std::string::npos ? bytes.size() : nl + 1;
  }
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[3], "pidlock-format=1");
  EXPECT_EQ(rec.pid, ::getpid());
  EXPECT_EQ(rec.data_directory, canonical(dir.path()));
  const std::int64_t started = proc_start_epoch(::getpid());
  EXPECT_LE(rec.start_time, now());
  EXPECT_NEAR(static_cast<double>(rec.start_time), static_cast<double>(started), 2.0);
  EXPECT_EQ(rec.boot_id, boot_id());
  EXPECT_EQ(rec.host, hostname());
  ASSERT_TRUE(rec.process_start_ticks);
  EXPECT_EQ(*rec.process_start_ticks, proc_start_ticks(::getpid()));
  EXPECT_EQ(rec.pid_namespace, std::optional<std::uint64_t>(pid_namespace_inode("/proc/self/ns/pid")));
  EXPECT_EQ(rec.status, "starting");
  EXPECT_EQ(handle.record().pid, ::getpid());

  const int flags = ::fcntl(handle.native_handle(), F_GETFD);
  ASSERT_GE(flags, 0);
  EXPECT_TRUE(flags & FD_CLOEXEC) << "the lock descriptor must be close-on-exec";
  EXPECT_TRUE(kernel_lock_held(lock));

  EXPECT_FALSE(handle.release());
  EXPECT_FALSE(handle.held());
  EXPECT_FALSE(exists(lock)) << "release removes the file";
}

INSTANTIATE_TEST_SUITE_P(Umask, FreshAcquire, ::testing::Values(mode_t{0}, mode_t{077}, mode_t{022}));

// An administrator reads /proc/PID/fd (and lsof) to see which files a
// daemon holds: the held lock shows under its own name, not as an unnamed
// "/... (deleted)" inode; taken over in place, too.
TEST(Acquire, HeldLockShowsUnderItsOwnNameInProcFd) {
  TempDir dir;
  const std::string lock = dir / "named.pid";
  const std::string expected = canonical(dir.path()) + "/named.pid";
  auto fd_target = [](int fd) {
    char buf[4096];
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    return n < 0 ? std::string("(readlink failed)") : std::string(buf, static_cast<size_t>(n));
  };
  LockManager manager;
  LockHandle fresh = manager.acquire(lock);
  EXPECT_EQ(fd_target(fresh.native_handle()), expected);
  EXPECT_FALSE(fresh.release());

  ASSERT_GT(leave_stale_lock(lock), 0);
  LockHandle taken = manager.acquire(lock);
  ASSERT_TRUE(taken.took_over());
  EXPECT_EQ(fd_target(taken.native_handle()), expected);
}

TEST(Acquire, HeldByLiveChildThrowsLockHeldErrorNamingTheChild) {
  TempDir dir;
  const std::string lock = dir / "held.pid";
  Child holder = start_holder(lock);
  LockManager manager;
  try {
    LockHandle h = manager.acquire(lock);
    FAIL() << "acquire succeeded while pid " << holder.pid() << " holds the lock";
  } catch (const pidlock::LockHeldError& e) {
    EXPECT_EQ(e.code(), pidlock::errc::held);
    ASSERT_TRUE(e.holder().holder);
    EXPECT_EQ(e.holder().holder->pid, holder.pid());
    EXPECT_EQ(e.holder().verdict, Verdict::kHeld);
    EXPECT_EQ(e.holder().reason, Reason::kKernelLockHeld);
    EXPECT_TRUE(e.holder().kernel_lock_evidence);
    const std::string what = e.what();
    EXPECT_NE(what.find(lock), std::string::npos) << what;
    EXPECT_NE(what.find("PID " + std::to_string(holder.pid())), std::string::npos) << what;
  }
  // The error_code form.
  std::error_code ec;
  pidlock::Inspection insp;
  LockHandle h = manager.acquire(lock, {}, ec, &insp);
  EXPECT_FALSE(h.held());
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(insp.verdict, Verdict::kHeld);
  EXPECT_EQ(insp.reason, Reason::kKernelLockHeld);
  ASSERT_TRUE(insp.holder);
  EXPECT_EQ(insp.holder->pid, holder.pid());
  // The holder's file is untouched.
  EXPECT_EQ(first_line(lock), std::to_string(holder.pid()));
  EXPECT_TRUE(kernel_lock_held(lock));
}

TEST(Acquire, HolderKilledBySigkillIsTakenOver) {
  TempDir dir;
  const std::string lock = dir / "killed.pid";
  Child holder = start_holder(lock);
  const pid_t dead = holder.pid();
  holder.kill(SIGKILL);
  holder.wait();
  LockManager manager;
  pidlock::Inspection before = manager.inspect(lock);
  EXPECT_EQ(before.verdict, Verdict::kStale);
  EXPECT_EQ(before.reason, Reason::kKernelLockFree);

  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.held());
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder());
  ASSERT_TRUE(handle.previous_holder()->holder);
  EXPECT_EQ(handle.previous_holder()->holder->pid, dead);
  EXPECT_EQ(handle.previous_holder()->verdict, Verdict::kStale);
  EXPECT_EQ(handle.previous_holder()->reason, Reason::kKernelLockFree);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
}

TEST(Acquire, HolderKilledButNotYetReapedIsTakenOver) {
  // The kernel drops the lock when the holder's descriptors close, before
  // its parent reaps it: a zombie holder never wedges the lock.
  TempDir dir;
  const std::string lock = dir / "zombie-holder.pid";
  Child holder = start_holder(lock);
  holder.kill(SIGKILL);
  holder.wait_exited_keep_zombie();
  ASSERT_EQ(proc_state(holder.pid()), 'Z');
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder() && handle.previous_holder()->holder);
  EXPECT_EQ(handle.previous_holder()->holder->pid, holder.pid());
}

TEST(Acquire, ReleasedLockIsFreeAndNotATakeOver) {
  TempDir dir;
  const std::string lock = dir / "clean.pid";
  Child holder = Child::holder({"try-acquire", lock});
  EXPECT_EQ(holder.read_line(), std::optional<std::string>("acquired"));
  EXPECT_EQ(exit_code(holder.wait()), 0);
  LockManager manager;
  EXPECT_EQ(manager.inspect(lock).verdict, Verdict::kFree);
  LockHandle handle = manager.acquire(lock);
  EXPECT_TRUE(handle.held());
  EXPECT_FALSE(handle.took_over());
}

// --- rule 11: a second acquire in the same process ---

TEST(Acquire, SecondAcquireInSameProcessIsRefusedAndKeepsTheFirst) {
  TempDir dir;
  const std::string lock = dir / "twice.pid";
  LockManager manager;
  LockHandle first = manager.acquire(lock);
  const std::string before = read_file(lock);
  for (int i = 0; i < 2; ++i) {
    LockManager other_manager;  // the table is per process, not per manager
    LockManager& m = i == 0 ? manager : other_manager;
    std::error_code ec;
    LockHandle second = m.acquire(lock, {}, ec);
    EXPECT_EQ(ec, pidlock::errc::already_held_by_this_process);
    EXPECT_FALSE(second.held());
  }
  try {
    LockHandle again = manager.acquire(lock);
    ADD_FAILURE() << "second acquire succeeded";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::already_held_by_this_process);
  }
  EXPECT_TRUE(first.held());
  EXPECT_TRUE(first.recheck());
  EXPECT_EQ(read_file(lock), before);
  EXPECT_TRUE(kernel_lock_held(lock));
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kHeld);
  EXPECT_EQ(insp.reason, Reason::kHeldByThisProcess);
}

TEST(Acquire, ConcurrentThreadsOfOneProcessGetExactlyOneLock) {
  TempDir dir;
  const std::string lock = dir / "threads.pid";
  LockManager manager;
  AcquireOptions options;
  options.durable = false;
  for (int round = 0; round < 100; ++round) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    LockHandle handles[2];
    std::error_code codes[2];
    std::thread threads[2];
    for (int t = 0; t < 2; ++t) {
      threads[t] = std::thread([&, t] {
        ++ready;
        while (!go.load()) std::this_thread::yield();
        handles[t] = manager.acquire(lock, options, codes[t]);
      });
    }
    while (ready.load() < 2) std::this_thread::yield();
    go = true;
    for (auto& t : threads) t.join();
    const int winners = handles[0].held() + handles[1].held();
    ASSERT_EQ(winners, 1) << "round " << round << ": " << codes[0].message() << " / " << codes[1].message();
    const int loser = handles[0].held() ? 1 : 0;
    EXPECT_EQ(codes[loser], pidlock::errc::already_held_by_this_process) << codes[loser].message();
    EXPECT_TRUE(handles[1 - loser].recheck());
    EXPECT_FALSE(handles[1 - loser].release());
    ASSERT_FALSE(exists(lock));
  }
}

// --- rule 12: a lost lock file ---

TEST(LockLost, ReleaseAfterRenameOverDoesNotRemoveTheReplacement) {
  TempDir dir;
  const std::string lock = dir / "renamed.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  EXPECT_TRUE(handle.recheck());
  write_file(dir / "other", "someone else's file\n");
  ASSERT_EQ(::rename((dir / "other").c_str(), lock.c_str()), 0);
  EXPECT_FALSE(handle.recheck());
  std::error_code ec;
  EXPECT_FALSE(handle.recheck(ec));
  EXPECT_FALSE(ec) << "a lost lock is not an I/O error";
  EXPECT_EQ(handle.release(), pidlock::errc::lock_lost);
  EXPECT_FALSE(handle.held());
  EXPECT_EQ(read_file(lock), "someone else's file\n");
}

TEST(LockLost, ReleaseAfterUnlinkAndRecreateDoesNotRemoveTheNewFile) {
  TempDir dir;
  const std::string lock = dir / "recreated.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  EXPECT_FALSE(handle.recheck()) << "deleted";
  write_file(lock, "new file\n");
  EXPECT_FALSE(handle.recheck()) << "replaced";
  EXPECT_EQ(handle.release(), pidlock::errc::lock_lost);
  EXPECT_EQ(read_file(lock), "new file\n");
}

TEST(LockLost, ReleaseAfterDeleteReportsLockLost) {
  TempDir dir;
  const std::string lock = dir / "deleted.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  EXPECT_FALSE(handle.recheck());
  EXPECT_EQ(handle.release(), pidlock::errc::lock_lost);
  EXPECT_FALSE(exists(lock));
}

TEST(LockLost, RecheckFailsWhenLineOneNamesAnotherPid) {
  TempDir dir;
  const std::string lock = dir / "overwritten.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.recheck());
  // A complete, valid record naming another pid, written in place (same
  // inode): only the content says the lock is no longer ours.
  pidlock::HolderRecord other = handle.record();
  other.pid = other.pid == 1 ? 2 : 1;
  const std::string bytes = pidlock::format_record(other, read_file(lock).size());
  int fd = ::open(lock.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  EXPECT_FALSE(handle.recheck());
}

TEST(LockLost, RecheckFailsWhenLineOneIsScribbledOver) {
  TempDir dir;
  const std::string lock = dir / "scribbled.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  std::string digits = std::to_string(::getpid());
  std::string other(digits.size(), '9');
  if (other == digits) other.assign(digits.size(), '8');
  int fd = ::open(lock.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, other.data(), other.size(), 0), static_cast<ssize_t>(other.size()));
  ::close(fd);
  EXPECT_FALSE(handle.recheck());
}

TEST(LockLost, RecheckOnEmptyHandleReportsNotHeld) {
  LockHandle empty;
  std::error_code ec;
  EXPECT_FALSE(empty.recheck(ec));
  EXPECT_EQ(ec, pidlock::errc::not_held);
  EXPECT_EQ(empty.release(), pidlock::errc::not_held);
}

// --- rule 13: forked children never remove or unlock the parent's lock ---

enum class ChildExit { kScopeEnd, kRelease, kExitWithStaticHandle, kMoveAssign };

class ForkedChild : public ::testing::TestWithParam<ChildExit> {};

TEST_P(ForkedChild, ExitLeavesParentsLockFileInPlaceAndLocked) {
  TempDir dir;
  const std::string lock = dir / "forked.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  const std::string before = read_file(lock);
  const ChildExit how = GetParam();
  Child child = Child::fork([&](int report) -> int {
    switch (how) {
      case ChildExit::kScopeEnd: {
        LockHandle mine = std::move(handle);  // destructor runs at scope end
        break;
      }
      case ChildExit::kRelease: {
        std::error_code ec = handle.release();
        write_string(report, ec ? ec.message() + "\n" : std::string("ok\n"));
        break;
      }
      case ChildExit::kExitWithStaticHandle: {
        static LockHandle kept;
        kept = std::move(handle);
        std::exit(0);  // runs static destructors, so kept's destructor
      }
      case ChildExit::kMoveAssign: {
        LockHandle other;
        handle = std::move(other);  // releases the moved-into handle
        break;
      }
    }
    return 0;
  });
  if (how == ChildExit::kRelease) {
    EXPECT_EQ(child.read_line(), std::optional<std::string>("ok"));
  }
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_TRUE(exists(lock));
  EXPECT_EQ(read_file(lock), before);
  EXPECT_TRUE(kernel_lock_held(lock));
  EXPECT_TRUE(handle.recheck());
  Child other = Child::holder({"try-acquire", lock});
  EXPECT_EQ(other.read_line().value_or(""), std::string("held ") + pidlock::to_string(Reason::kKernelLockHeld));
  EXPECT_EQ(exit_code(other.wait()), 2);
  EXPECT_FALSE(handle.release());
  EXPECT_FALSE(exists(lock));
}

INSTANTIATE_TEST_SUITE_P(Exits, ForkedChild,
                         ::testing::Values(ChildExit::kScopeEnd, ChildExit::kRelease,
                                           ChildExit::kExitWithStaticHandle, ChildExit::kMoveAssign));

}  // namespace

namespace {

TEST(Handle, MoveLeavesTheSourceEmptyAndAssignmentReleasesTheTarget) {
  TempDir dir;
  const std::string a = dir / "a.pid";
  const std::string b = dir / "b.pid";
  LockManager manager;
  LockHandle first = manager.acquire(a);
  LockHandle moved = std::move(first);
  EXPECT_FALSE(first.held());
  EXPECT_EQ(first.native_handle(), -1);
  EXPECT_TRUE(first.path().empty());
  EXPECT_EQ(first.release(), pidlock::errc::not_held);
  EXPECT_TRUE(moved.held());
  EXPECT_TRUE(exists(a)) << "moving never releases";
  LockHandle second = manager.acquire(b);
  moved = std::move(second);  // releases a, now holds b
  EXPECT_FALSE(exists(a));
  EXPECT_TRUE(exists(b));
  EXPECT_EQ(moved.record().pid, ::getpid());
  EXPECT_FALSE(moved.release());
  EXPECT_EQ(moved.release(), pidlock::errc::not_held) << "a second release";
  EXPECT_THROW((void)moved.record(), pidlock::Error);
}

TEST(Handle, InvalidOptionsAreRefusedWithoutCreatingAnything) {
  TempDir dir;
  const std::string lock = dir / "opts.pid";
  LockManager manager;
  AcquireOptions options;
  options.max_attempts = 0;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, options, ec);
  EXPECT_EQ(ec, pidlock::errc::invalid_argument);
  EXPECT_FALSE(exists(lock));
}

TEST(Handle, ModeOptionIsAppliedRegardlessOfUmask) {
  TempDir dir;
  const std::string lock = dir / "mode.pid";
  UmaskScope umask_scope(077);
  AcquireOptions options;
  options.mode = 0644;
  LockManager manager;
  LockHandle h = manager.acquire(lock, options);
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

}  // namespace
