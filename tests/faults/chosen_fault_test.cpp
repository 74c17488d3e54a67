// Chosen faults through the OS seam (lib/posix/system.hpp, STYLE.md
// point 7), each with its exact outcome: ENOSPC, EIO, EINTR, EMFILE, EROFS,
// one-byte and zero-byte writes fail cleanly or succeed, and leave nothing
// behind; a creation lost to a contender between its steps is no error. (injected_fault_test.cpp fails every call in turn;
// crash_step_test.cpp ends the process between any two steps.)
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
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
                      FaultCase{"EioOnFsync", Call::kFsync, EIO}, FaultCase{"EmfileOnCreate", Call::kOpenat, EMFILE},
                      FaultCase{"ErofsOnCreate", Call::kOpenat, EROFS},
                      FaultCase{"EaccesOnCreate", Call::kOpenat, EACCES},
                      FaultCase{"EnospcOnCreate", Call::kOpenat, ENOSPC}),
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

// Runs `at_step` when the library passes a checkpoint (once per name).
class StepHookSystem : public d::SystemWrapper {
 public:
  explicit StepHookSystem(std::function<void(const std::string&)> at_step)
      : d::SystemWrapper(d::real_system()), at_step_(std::move(at_step)) {}
  void checkpoint(const char* step) override {
    if (seen_.insert(step).second) at_step_(step);
  }

 private:
  std::function<void(const std::string&)> at_step_;
  std::set<std::string> seen_;
};

// A contender that finds our file between our open(O_CREAT|O_EXCL) and our
// lock, and locks it first (as a contender judging it would, or one taking
// over a file whose creator stalled): our creation is lost, not an error --
// we look at the file like any other (held), and remove nothing.
TEST(CreationLost, ToAContenderThatLockedOurFileFirst) {
  TempDir dir;
  const std::string lock = dir / "contended.pid";
  int contender = -1;
  StepHookSystem hooks([&](const std::string& step) {
    if (step != "acquire.created") return;
    contender = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(contender, 0);
    ASSERT_EQ(d::real_system().try_lock(contender), d::KernelLock::kAcquired);
  });
  std::error_code ec;
  {
    ScopedSystem scope(&hooks);
    LockManager manager;
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_FALSE(h.held());
  }
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"contended.pid"}) << "the contender's file stays";
  ::close(contender);
}

// A contender that removed our (empty, unlocked) file before our lock: we
// lock an inode without a name, notice it, and create the file again.
TEST(CreationLost, ToAContenderThatRemovedOurFileBeforeOurLock) {
  TempDir dir;
  const std::string lock = dir / "removed.pid";
  StepHookSystem hooks([&](const std::string& step) {
    if (step == "acquire.created") {
      ASSERT_EQ(::unlink(lock.c_str()), 0);
    }
  });
  ScopedSystem scope(&hooks);
  LockManager manager;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.held());
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_TRUE(kernel_lock_held(lock));
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
