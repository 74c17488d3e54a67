// Chosen faults through the OS seam (lib/posix/system.hpp, STYLE.md
// point 7), each with its exact outcome: ENOSPC, EIO, EINTR, EMFILE, EROFS,
// no O_TMPFILE, one-byte and zero-byte writes fail cleanly or succeed, and
// leave nothing behind. (injected_fault_test.cpp fails every call in turn;
// crash_step_test.cpp ends the process between any two steps.)
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;

struct FaultCase {
  const char* name;
  Call call;
  int err;
};

class InjectedFailure : public ::testing::TestWithParam<FaultCase> {};

TEST_P(InjectedFailure, AcquireFailsWithTheErrorAndLeavesNothingBehind) {
  TempDir dir;
  const std::string lock = dir / "faulty.pid";
  FaultSystem faulty;
  faulty.arm(GetParam().call, 1, FaultKind::kErrno, GetParam().err, kEveryCall);
  {
    ScopedSystem scope(&faulty);
    LockManager manager;
    std::error_code ec;
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_EQ(ec, std::error_code(GetParam().err, std::system_category())) << ec.message();
    EXPECT_FALSE(h.held());
    EXPECT_GT(faulty.hits(), 0);
    try {
      LockHandle t = manager.acquire(lock);
      ADD_FAILURE() << "acquire succeeded";
    } catch (const pidlock::Error& e) {
      EXPECT_NE(std::string(e.what()).find(lock), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::strerror(GetParam().err)), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(dir.entries().empty()) << "left behind: " << dir.entries().front();
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.held()) << "the real system works again";
  EXPECT_FALSE(h.took_over());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, InjectedFailure,
    ::testing::Values(FaultCase{"EnospcOnWrite", Call::kPwrite, ENOSPC}, FaultCase{"EioOnWrite", Call::kPwrite, EIO},
                      FaultCase{"EioOnFsync", Call::kFsync, EIO}, FaultCase{"EmfileOnCreate", Call::kOpenUnnamed, EMFILE},
                      FaultCase{"ErofsOnCreate", Call::kOpenUnnamed, EROFS},
                      FaultCase{"EaccesOnCreate", Call::kOpenUnnamed, EACCES},
                      FaultCase{"EnospcOnLink", Call::kLinkUnnamed, ENOSPC}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string(info.param.name); });

TEST(InjectedFaults, EintrIsRetried) {
  TempDir dir;
  const std::string lock = dir / "eintr.pid";
  for (Call call : {Call::kPwrite, Call::kFsync, Call::kOpenat}) {
    FaultSystem faulty;
    faulty.arm(call, 1, FaultKind::kErrno, EINTR, 3);
    ScopedSystem scope(&faulty);
    LockManager manager;
    std::error_code ec;
    if (call == Call::kOpenat) write_file(lock, "");  // openat is used on the existing (stale, empty) file
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_FALSE(ec) << call_name(call) << ": " << ec.message();
    EXPECT_EQ(faulty.hits(), 3) << call_name(call);
    EXPECT_FALSE(h.release());
  }
}

TEST(InjectedFaults, WithoutOTmpfileTheHiddenTemporaryNameIsUsedAndRemoved) {
  // File systems without O_TMPFILE: open_unnamed says EOPNOTSUPP.
  TempDir dir;
  const std::string lock = dir / "no-tmpfile.pid";
  FaultSystem faulty;
  faulty.arm(Call::kOpenUnnamed, 1, FaultKind::kErrno, EOPNOTSUPP, kEveryCall);
  ScopedSystem scope(&faulty);
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  EXPECT_GT(faulty.hits(), 0);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_TRUE(kernel_lock_held(lock));
  std::vector<std::string> left = dir.entries();
  ASSERT_EQ(left.size(), 1u) << "the temporary name is gone";
  EXPECT_EQ(left[0], "no-tmpfile.pid");
  // Held against another process, released cleanly.
  Child other = Child::holder({"try-acquire", lock});
  EXPECT_EQ(exit_code(other.wait()), 2);
  EXPECT_FALSE(h.release());
  EXPECT_TRUE(dir.entries().empty());
}

TEST(InjectedFaults, ShortWritesStillWriteTheWholeRecord) {
  TempDir dir;
  const std::string lock = dir / "short.pid";
  FaultSystem faulty;
  faulty.always(Call::kPwrite, FaultKind::kTrickleWrite);
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
  FaultSystem faulty;
  faulty.always(Call::kPwrite, FaultKind::kZeroWrite);
  ScopedSystem scope(&faulty);
  LockManager manager;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, std::errc::no_space_on_device);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(InjectedFaults, FailedReleaseUnlinkIsReportedAndTheHandleIsEmpty) {
  TempDir dir;
  const std::string lock = dir / "unlink.pid";
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  FaultSystem faulty;
  faulty.arm(Call::kUnlinkat, 1, FaultKind::kErrno, EIO, kEveryCall);
  {
    ScopedSystem scope(&faulty);
    EXPECT_EQ(h.release(), std::error_code(EIO, std::system_category()));
  }
  EXPECT_FALSE(h.held());
  // The file stays, but its lock died with the descriptor: stale, and taken
  // over without help.
  EXPECT_TRUE(exists(lock));
  EXPECT_FALSE(kernel_lock_held(lock));
  LockHandle again = manager.acquire(lock);
  EXPECT_TRUE(again.took_over());
}

}  // namespace
