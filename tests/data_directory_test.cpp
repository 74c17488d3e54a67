// Rule 18: guard_data_directory refuses missing, shared and foreign-owned
// directories, records the canonical path, and judges a lock file copied
// from another directory on its evidence.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

namespace {

using namespace pidlock_test;
using pidlock::DataDirectoryOptions;
using pidlock::LockHandle;
using pidlock::LockManager;

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

TEST(DataDirectory, MissingDirectoryIsAnError) {
  TempDir dir;
  const std::string missing = dir / "no-such-data";
  LockManager manager;
  std::error_code ec;
  LockHandle h = pidlock::guard_data_directory(manager, missing, {}, ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();
  EXPECT_FALSE(h.held());
  EXPECT_ANY_THROW({ LockHandle t = pidlock::guard_data_directory(manager, missing); });
  EXPECT_FALSE(exists(missing));
}

TEST(DataDirectory, RegularFileIsNotADataDirectory) {
  TempDir dir;
  const std::string file = dir / "file";
  write_file(file, "x");
  LockManager manager;
  std::error_code ec;
  LockHandle h = pidlock::guard_data_directory(manager, file, {}, ec);
  EXPECT_TRUE(ec);
  EXPECT_FALSE(h.held());
}

TEST(DataDirectory, WorldWritableDirectoryIsUnsafe) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(data.c_str(), 0777), 0);
  LockManager manager;
  std::error_code ec;
  LockHandle h = pidlock::guard_data_directory(manager, data, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::unsafe_data_directory);
  EXPECT_FALSE(exists(data + "/pidlock.pid"));
  try {
    LockHandle t = pidlock::guard_data_directory(manager, data);
    ADD_FAILURE() << "guarded a 0777 directory";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::unsafe_data_directory);
    EXPECT_NE(std::string(e.what()).find("0777"), std::string::npos) << e.what();
  }
  // Group access is refused by default, allowed (read-only) on request.
  ASSERT_EQ(::chmod(data.c_str(), 0750), 0);
  h = pidlock::guard_data_directory(manager, data, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::unsafe_data_directory);
  DataDirectoryOptions group;
  group.allow_group_access = true;
  h = pidlock::guard_data_directory(manager, data, group, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(h.held());
}

TEST(DataDirectory, Mode0700WorksAndRecordsTheCanonicalPath) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir / "elsewhere").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.path().c_str(), (dir / "via-link").c_str()), 0);
  // A path with a symlink component and "..".
  const std::string roundabout = dir / "via-link/elsewhere/../data";
  LockManager manager;
  DataDirectoryOptions options;
  options.lock_file_name = "postmaster.pid";
  LockHandle h = pidlock::guard_data_directory(manager, roundabout, options);
  ASSERT_TRUE(h.held());
  const std::string expected = canonical(data);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(h.record().data_directory, expected);
  const std::string bytes = read_file(data + "/postmaster.pid");
  const size_t l1 = bytes.find('\n');
  EXPECT_EQ(bytes.substr(l1 + 1, bytes.find('\n', l1 + 1) - l1 - 1), expected) << "line 2";
  EXPECT_EQ(bytes.substr(0, l1), std::to_string(::getpid()));
  EXPECT_FALSE(h.release());
  EXPECT_FALSE(exists(data + "/postmaster.pid"));
}

TEST(DataDirectory, DirectoryOwnedByAnotherUserIsUnsafe) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  ASSERT_EQ(::chown(data.c_str(), 65534, 65534), 0);
  struct stat st {};
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  ASSERT_EQ(st.st_uid, 65534u) << "the chown must really have happened";
  LockManager manager;
  std::error_code ec;
  LockHandle h = pidlock::guard_data_directory(manager, data, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::unsafe_data_directory);
  EXPECT_FALSE(exists(data + "/pidlock.pid"));
  DataDirectoryOptions any_owner;
  any_owner.require_owner = false;
  h = pidlock::guard_data_directory(manager, data, any_owner, ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST(DataDirectory, SecondGuardOfTheSameDirectoryIsHeld) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  Child other = Child::fork([&](int report) -> int {
    LockManager m;
    std::error_code ec;
    LockHandle h = pidlock::guard_data_directory(m, data, {}, ec);
    write_string(report, ec ? "error\n" : "ready\n");
    for (;;) ::pause();
  });
  ASSERT_EQ(other.read_line(), std::optional<std::string>("ready"));
  LockManager manager;
  std::error_code ec;
  pidlock::Inspection holder;
  LockHandle h = pidlock::guard_data_directory(manager, data, {}, ec, &holder);
  EXPECT_EQ(ec, pidlock::errc::held);
  ASSERT_TRUE(holder.holder);
  EXPECT_EQ(holder.holder->pid, other.pid());
  EXPECT_EQ(holder.holder->data_directory, canonical(data));
}

TEST(DataDirectory, LockFileCopiedFromAnotherDirectoryIsJudgedOnEvidence) {
  TempDir dir;
  const std::string a = dir / "a";
  const std::string b = dir / "b";
  ASSERT_EQ(::mkdir(a.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(b.c_str(), 0700), 0);
  // A live holder of a/, whose lock file is copied into b/ (as with a
  // restored backup). The copy is another inode: nobody holds its lock.
  Child holder = Child::fork([&](int report) -> int {
    LockManager m;
    std::error_code ec;
    LockHandle h = pidlock::guard_data_directory(m, a, {}, ec);
    write_string(report, ec ? "error\n" : "ready\n");
    for (;;) ::pause();
  });
  ASSERT_EQ(holder.read_line(), std::optional<std::string>("ready"));
  write_file(b + "/pidlock.pid", read_file(a + "/pidlock.pid"), 0600);
  LockManager manager;
  LockHandle h = pidlock::guard_data_directory(manager, b);
  EXPECT_TRUE(h.took_over());
  ASSERT_TRUE(h.previous_holder() && h.previous_holder()->holder);
  EXPECT_EQ(h.previous_holder()->holder->data_directory, canonical(a));
  EXPECT_EQ(h.previous_holder()->holder->pid, holder.pid());
  EXPECT_EQ(h.previous_holder()->reason, pidlock::Reason::kKernelLockFree);
  EXPECT_EQ(h.record().data_directory, canonical(b));
  EXPECT_TRUE(kernel_lock_held(a + "/pidlock.pid")) << "a/'s holder is untouched";

  // A PostgreSQL file naming a live process with another data directory is
  // still held by its pid evidence: line 2 decides nothing.
  ASSERT_FALSE(h.release());
  Child live = Child::fork([](int) -> int {
    for (;;) ::pause();
  });
  write_file(b + "/pidlock.pid", postmaster_pid(live.pid(), "/somewhere/else", now()), 0600);
  std::error_code ec;
  pidlock::Inspection held;
  LockHandle refused = pidlock::guard_data_directory(manager, b, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(held.reason, pidlock::Reason::kPidAlive);
}

}  // namespace
