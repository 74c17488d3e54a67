// Faults injected through the OS seam (lib/posix/system.hpp, STYLE.md
// point 7): ENOSPC, EIO, EINTR, EMFILE, EROFS and short writes fail cleanly
// and leave nothing behind; a crash (the process ends) between any two steps
// of acquire, take-over, update or release never wedges the lock (G2).
#include <pidlock/pidlock.hpp>

#include "helpers/scoped_system.hpp"
#include "helpers/test_support.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::detail::real_system;
using pidlock::detail::SystemWrapper;

// Which call to fail, how, and how many times.
class FaultySystem : public SystemWrapper {
 public:
  FaultySystem() : SystemWrapper(real_system()) {}

  std::string fail_call;  // "pwrite", "fsync", "open_unnamed", "openat", "link_unnamed", "unlinkat"
  int fail_errno = EIO;
  int fail_times = 1 << 30;
  bool short_writes = false;    // pwrite writes one byte at a time
  bool zero_writes = false;     // pwrite returns 0 (no progress, no errno)
  std::string crash_at;         // checkpoint name at which to _exit (crash)
  int calls_failed = 0;

  int openat(int d, const char* n, int f, mode_t m) override {
    return fail("openat") ? -1 : SystemWrapper::openat(d, n, f, m);
  }
  ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override {
    if (fail("pwrite")) return -1;
    if (zero_writes) return 0;
    return SystemWrapper::pwrite(fd, b, short_writes && c > 0 ? 1 : c, o);
  }
  int fsync(int fd) override { return fail("fsync") ? -1 : SystemWrapper::fsync(fd); }
  int open_unnamed(int d, mode_t m, bool c) override {
    return fail("open_unnamed") ? -1 : SystemWrapper::open_unnamed(d, m, c);
  }
  int link_unnamed(int fd, int d, const char* n) override {
    return fail("link_unnamed") ? -1 : SystemWrapper::link_unnamed(fd, d, n);
  }
  int unlinkat(int d, const char* n, int f) override {
    return fail("unlinkat") ? -1 : SystemWrapper::unlinkat(d, n, f);
  }
  void checkpoint(const char* step) override {
    if (!crash_at.empty() && crash_at == step) ::_exit(99);  // no destructors, no release
  }

 private:
  bool fail(const char* call) {
    if (fail_call != call || fail_times <= 0) return false;
    --fail_times;
    ++calls_failed;
    errno = fail_errno;
    return true;
  }
};

// Names in a folder other than . and ..
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

struct FaultCase {
  const char* name;
  const char* call;
  int err;
};

class InjectedFailure : public ::testing::TestWithParam<FaultCase> {};

TEST_P(InjectedFailure, AcquireFailsWithTheErrorAndLeavesNothingBehind) {
  TempDir dir;
  const std::string lock = dir / "faulty.pid";
  FaultySystem faulty;
  faulty.fail_call = GetParam().call;
  faulty.fail_errno = GetParam().err;
  {
    ScopedSystem scope(&faulty);
    LockManager manager;
    std::error_code ec;
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_EQ(ec, std::error_code(GetParam().err, std::system_category())) << ec.message();
    EXPECT_FALSE(h.held());
    EXPECT_GT(faulty.calls_failed, 0);
    try {
      LockHandle t = manager.acquire(lock);
      ADD_FAILURE() << "acquire succeeded";
    } catch (const pidlock::Error& e) {
      EXPECT_NE(std::string(e.what()).find(lock), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::strerror(GetParam().err)), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(entries(dir.path()).empty()) << "left behind: " << entries(dir.path()).front();
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.held()) << "the real system works again";
  EXPECT_FALSE(h.took_over());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, InjectedFailure,
    ::testing::Values(FaultCase{"EnospcOnWrite", "pwrite", ENOSPC}, FaultCase{"EioOnWrite", "pwrite", EIO},
                      FaultCase{"EioOnFsync", "fsync", EIO}, FaultCase{"EmfileOnCreate", "open_unnamed", EMFILE},
                      FaultCase{"ErofsOnCreate", "open_unnamed", EROFS},
                      FaultCase{"EaccesOnCreate", "open_unnamed", EACCES},
                      FaultCase{"EnospcOnLink", "link_unnamed", ENOSPC}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string(info.param.name); });

TEST(InjectedFaults, EintrIsRetried) {
  TempDir dir;
  const std::string lock = dir / "eintr.pid";
  for (const char* call : {"pwrite", "fsync", "openat"}) {
    FaultySystem faulty;
    faulty.fail_call = call;
    faulty.fail_errno = EINTR;
    faulty.fail_times = 3;
    ScopedSystem scope(&faulty);
    LockManager manager;
    std::error_code ec;
    if (std::string(call) == "openat") write_file(lock, "");  // openat is used on the existing (stale, empty) file
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_FALSE(ec) << call << ": " << ec.message();
    EXPECT_EQ(faulty.calls_failed, 3) << call;
    EXPECT_FALSE(h.release());
  }
}

TEST(InjectedFaults, WithoutOTmpfileTheHiddenTemporaryNameIsUsedAndRemoved) {
  // File systems without O_TMPFILE: open_unnamed says EOPNOTSUPP.
  TempDir dir;
  const std::string lock = dir / "no-tmpfile.pid";
  FaultySystem faulty;
  faulty.fail_call = "open_unnamed";
  faulty.fail_errno = EOPNOTSUPP;
  ScopedSystem scope(&faulty);
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  EXPECT_GT(faulty.calls_failed, 0);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_TRUE(kernel_lock_held(lock));
  std::vector<std::string> left = entries(dir.path());
  ASSERT_EQ(left.size(), 1u) << "the temporary name is gone";
  EXPECT_EQ(left[0], "no-tmpfile.pid");
  // Held against another process, released cleanly.
  Child other = Child::holder({"try-acquire", lock});
  EXPECT_EQ(exit_code(other.wait()), 2);
  EXPECT_FALSE(h.release());
  EXPECT_TRUE(entries(dir.path()).empty());
}

TEST(InjectedFaults, ShortWritesStillWriteTheWholeRecord) {
  TempDir dir;
  const std::string lock = dir / "short.pid";
  FaultySystem faulty;
  faulty.short_writes = true;
  ScopedSystem scope(&faulty);
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, ::getpid());
  h.update_status("ready");
  parsed = pidlock::parse_record(read_file(lock));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->status, "ready");
}

TEST(InjectedFaults, WriteWithoutProgressIsReportedAsEnospc) {
  TempDir dir;
  const std::string lock = dir / "zero.pid";
  FaultySystem faulty;
  faulty.zero_writes = true;
  ScopedSystem scope(&faulty);
  LockManager manager;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, std::errc::no_space_on_device);
  EXPECT_TRUE(entries(dir.path()).empty());
}

TEST(InjectedFaults, FailedReleaseUnlinkIsReportedAndTheHandleIsEmpty) {
  TempDir dir;
  const std::string lock = dir / "unlink.pid";
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  FaultySystem faulty;
  faulty.fail_call = "unlinkat";
  faulty.fail_errno = EIO;
  {
    ScopedSystem scope(&faulty);
    EXPECT_EQ(h.release(), std::error_code(EIO, std::system_category()));
  }
  EXPECT_FALSE(h.held());
  // The file stays, but its lock died with the descriptor: stale, and taken
  // over without help.
  EXPECT_TRUE(exists_no_follow(lock));
  EXPECT_FALSE(kernel_lock_held(lock));
  LockHandle again = manager.acquire(lock);
  EXPECT_TRUE(again.took_over());
}

// --- crash between any two steps ---

enum class Operation { kAcquire, kTakeOver, kUpdate, kRelease };

struct CrashCase {
  const char* step;
  Operation operation;
};

class CrashAt : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashAt, NextAcquireSucceedsByItself) {
  TempDir dir;
  const std::string lock = dir / "crash.pid";
  const CrashCase c = GetParam();
  if (c.operation == Operation::kTakeOver) write_file(lock, std::to_string(dead_pid()) + "\n", 0600);  // a stale pid file
  Child crasher = Child::fork([&](int) -> int {
    FaultySystem faulty;
    ScopedSystem scope(&faulty);
    LockManager m;
    if (c.operation == Operation::kAcquire || c.operation == Operation::kTakeOver) faulty.crash_at = c.step;
    LockHandle h = m.acquire(lock);
    if (c.operation == Operation::kUpdate) {
      faulty.crash_at = c.step;
      h.update_status("ready");
    }
    if (c.operation == Operation::kRelease) {
      faulty.crash_at = c.step;
      (void)h.release();
    }
    return 0;  // did not crash: the step was never reached
  });
  EXPECT_EQ(exit_code(crasher.wait()), 99) << "step " << c.step << " was never reached";
  LockManager manager;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  ASSERT_FALSE(ec) << "after a crash at " << c.step << ": " << ec.message();
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  std::vector<std::string> left = entries(dir.path());
  EXPECT_EQ(left.size(), 1u) << "only the lock file";
}

INSTANTIATE_TEST_SUITE_P(
    Steps, CrashAt,
    ::testing::Values(CrashCase{"acquire.created", Operation::kAcquire},
                      CrashCase{"acquire.locked", Operation::kAcquire},
                      CrashCase{"acquire.written", Operation::kAcquire},
                      CrashCase{"acquire.before_link", Operation::kAcquire},
                      CrashCase{"acquire.linked", Operation::kAcquire},
                      CrashCase{"takeover.verified", Operation::kTakeOver},
                      CrashCase{"takeover.written", Operation::kTakeOver},
                      CrashCase{"update.before_write", Operation::kUpdate},
                      CrashCase{"update.written", Operation::kUpdate},
                      CrashCase{"release.verified", Operation::kRelease},
                      CrashCase{"release.removed", Operation::kRelease}),
    [](const ::testing::TestParamInfo<CrashCase>& info) {
      std::string n = info.param.step;
      for (char& ch : n)
        if (ch == '.') ch = '_';
      return n;
    });

TEST(CrashAt, TornUpdateByADyingHolderIsTakenOver) {
  // The holder dies in the middle of rewriting its record: the write of
  // the new, longer record stops short of its end. The next acquire must not wait for a checksum that never
  // comes right.
  TempDir dir;
  const std::string lock = dir / "torn.pid";
  Child crasher = Child::fork([&](int) -> int {
    LockManager m;
    LockHandle h = m.acquire(lock);
    struct HalfWriteThenDie : SystemWrapper {
      HalfWriteThenDie() : SystemWrapper(real_system()) {}
      ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override {
        // All but the end of the longer record: its checksum line is cut.
        SystemWrapper::pwrite(fd, b, c - 5, o);
        ::_exit(99);
      }
    } dying;
    ScopedSystem scope(&dying);
    h.update_status("a-much-longer-status-word");
    return 0;
  });
  EXPECT_EQ(exit_code(crasher.wait()), 99);
  pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
  EXPECT_FALSE(parsed.record) << "the record is torn for good";
  LockManager manager;
  const std::int64_t t0 = monotonic_ms();
  LockHandle h = manager.acquire(lock);
  EXPECT_LT(monotonic_ms() - t0, 2000);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, pidlock::Reason::kUnparsable);
}

}  // namespace
