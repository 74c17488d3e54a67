// AcquireOptions::group (and mode): a lock file shared with a group. The
// group is set with fchown through the seam before the file has a name, so
// a failure leaves nothing behind; a stale file is rewritten in place only
// when it already has the chosen group.
//
// Choosing any group needs root; the tests that need it skip otherwise, and
// the one that proves a non-member is refused drops root in a forked child.
#include <pidlock/pidlock.hpp>

#include "support/fault_system.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace {

using namespace pidlock_test;
using pidlock::AcquireOptions;
using pidlock::LockHandle;
using pidlock::LockManager;

// A group no test user belongs to, which need not exist in /etc/group.
constexpr gid_t kSharedGroup = 4242;

struct stat stat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

AcquireOptions shared_with_group() {
  AcquireOptions options;
  options.group = kSharedGroup;
  options.mode = 0640;
  return options;
}

TEST(LockFileGroup, IsSetAtCreationWithTheMode) {
  if (geteuid() != 0) GTEST_SKIP() << "choosing a group one is not a member of needs root";
  TempDir dir;
  const std::string lock = dir / "shared.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock, shared_with_group());
  const struct stat st = stat_of(lock);
  EXPECT_EQ(st.st_gid, kSharedGroup);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

// Acquires `lock` with `group` while every fchown fails with EPERM.
std::error_code acquire_with_failing_fchown(const std::string& lock, gid_t group, FaultSystem& faulty) {
  ScopedSystem scope(&faulty);
  faulty.arm(Call::kFchown, 1, FaultKind::kErrno, EPERM, kEveryCall);
  AcquireOptions options;
  options.group = group;
  LockManager manager;
  std::error_code ec;
  LockHandle handle = manager.acquire(lock, options, ec);
  if (!ec) {
    EXPECT_EQ(stat_of(lock).st_gid, group);
  }
  return ec;
}

TEST(LockFileGroup, AFailedFchownLeavesNoFileBehind) {
  TempDir dir;
  FaultSystem faulty;
  // Never the group a new file gets anyway.
  EXPECT_EQ(acquire_with_failing_fchown(dir / "shared.pid", getegid() + 1, faulty), std::errc::operation_not_permitted);
  EXPECT_TRUE(faulty.hit());
  EXPECT_TRUE(dir.entries().empty()) << "nothing may be left behind";
}

TEST(LockFileGroup, TheGroupAFileGetsAnywayNeedsNoFchown) {
  TempDir dir;
  FaultSystem faulty;
  EXPECT_FALSE(acquire_with_failing_fchown(dir / "own.pid", getegid(), faulty));
  EXPECT_EQ(faulty.count(Call::kFchown), 0);
}

TEST(LockFileGroup, ANonMemberIsRefusedWithEpermAndNothingIsLeft) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  const std::string lock = dir / "shared.pid";
  Child c = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "not dropped\n");
      return 1;
    }
    LockManager manager;
    std::error_code ec;
    LockHandle handle = manager.acquire(lock, shared_with_group(), ec);
    write_string(report, ec == std::errc::operation_not_permitted ? "EPERM\n" : "other: " + ec.message() + "\n");
    return 0;
  });
  EXPECT_EQ(c.read_line(), std::optional<std::string>("EPERM"));
  EXPECT_TRUE(c.exited_with(0));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(LockFileGroup, AStaleFileOfAnotherGroupIsReplacedOneOfTheGroupRewritten) {
  if (geteuid() != 0) GTEST_SKIP() << "choosing a group one is not a member of needs root";
  TempDir dir;
  const std::string lock = dir / "shared.pid";
  leave_stale_lock(lock);  // our own group
  const ino_t other_group_inode = stat_of(lock).st_ino;
  // Kept open (read-only: no sign of life), the replaced inode cannot be
  // freed, so the new file cannot get its number back.
  const int keep_inode = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(keep_inode, 0);
  LockManager manager;
  {
    LockHandle handle = manager.acquire(lock, shared_with_group());
    EXPECT_TRUE(handle.took_over());
    const struct stat st = stat_of(lock);
    EXPECT_EQ(st.st_gid, kSharedGroup);
    EXPECT_NE(st.st_ino, other_group_inode) << "a file of another group must not be rewritten in place";
  }
  ::close(keep_inode);
  leave_stale_lock(lock);
  ASSERT_EQ(::chown(lock.c_str(), static_cast<uid_t>(-1), kSharedGroup), 0);
  const ino_t same_group_inode = stat_of(lock).st_ino;
  LockHandle handle = manager.acquire(lock, shared_with_group());
  EXPECT_TRUE(handle.took_over());
  EXPECT_EQ(stat_of(lock).st_ino, same_group_inode) << "a file of the chosen group is rewritten in place";
  EXPECT_EQ(stat_of(lock).st_gid, kSharedGroup);
}

}  // namespace
