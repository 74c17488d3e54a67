// Rule 16 (G7): whatever sits at the lock path that is not a lock file of
// ours (symlinks, dangling symlinks, directories, FIFOs, sockets, devices,
// hard-linked files) gives a clear error; nothing is followed, blocked on,
// written or removed.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;

// Runs every entry point on `lock` in a forked child with a deadline, so
// that a blocking open (FIFO) fails the test instead of hanging it.
// Reports "acquire=<code> inspect=<code> break=<code>".
std::string codes_of_all_entry_points(const std::string& lock) {
  Child child = Child::fork([&](int report) -> int {
    ::alarm(20);  // a hang kills the child; the parent then sees no report
    auto name = [](const std::error_code& ec) -> std::string {
      if (ec == pidlock::errc::symlink_at_lock_path) return "symlink";
      if (ec == pidlock::errc::not_a_regular_file) return "not-regular";
      if (ec == pidlock::errc::hard_linked_lock_file) return "hard-linked";
      if (!ec) return "ok";
      return ec.message();
    };
    LockManager m;
    std::error_code acquire_ec, inspect_ec, break_ec;
    LockHandle h = m.acquire(lock, {}, acquire_ec);
    m.inspect(lock, {}, inspect_ec);
    pidlock::BreakResult b = m.break_stale(lock, {}, break_ec);
    write_string(report, "acquire=" + name(acquire_ec) + " inspect=" + name(inspect_ec) +
                             " break=" + name(break_ec) + (b.removed ? " removed" : "") + "\n");
    return 0;
  });
  const std::int64_t t0 = monotonic_ms();
  std::string line = child.read_line(std::chrono::milliseconds(15000)).value_or("(no report: blocked?)");
  EXPECT_LT(monotonic_ms() - t0, 10000) << "never blocks";
  return line;
}

TEST(HostilePath, SymlinkToAFileIsRefusedAndTheTargetIsUntouched) {
  TempDir dir;
  const std::string target = dir / "precious.txt";
  const std::string lock = dir / "link.pid";
  write_file(target, "garbage that looks stale\n", 0600);
  ASSERT_EQ(::symlink(target.c_str(), lock.c_str()), 0);
  struct stat before {};
  ASSERT_EQ(::stat(target.c_str(), &before), 0);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=symlink inspect=symlink break=symlink");
  struct stat after {};
  ASSERT_EQ(::stat(target.c_str(), &after), 0) << "the target was deleted";
  EXPECT_EQ(read_file(target), "garbage that looks stale\n");
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  struct stat link {};
  ASSERT_EQ(::lstat(lock.c_str(), &link), 0);
  EXPECT_TRUE(S_ISLNK(link.st_mode));
  // The throwing form.
  LockManager manager;
  try {
    LockHandle h = manager.acquire(lock);
    ADD_FAILURE() << "acquired through a symlink";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), pidlock::errc::symlink_at_lock_path);
    EXPECT_NE(std::string(e.what()).find(lock), std::string::npos) << e.what();
  }
}

TEST(HostilePath, DanglingSymlinkIsRefusedAndNothingIsCreatedAtItsTarget) {
  TempDir dir;
  const std::string target = dir / "would-be-created.pid";
  const std::string lock = dir / "dangling.pid";
  ASSERT_EQ(::symlink(target.c_str(), lock.c_str()), 0);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=symlink inspect=symlink break=symlink");
  EXPECT_FALSE(exists(target));
  EXPECT_TRUE(exists(lock));
}

TEST(HostilePath, DirectoryIsNotARegularFile) {
  TempDir dir;
  const std::string lock = dir / "adir.pid";
  ASSERT_EQ(::mkdir(lock.c_str(), 0700), 0);
  write_file(lock + "/inside", "keep\n");
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=not-regular inspect=not-regular break=not-regular");
  EXPECT_EQ(read_file(lock + "/inside"), "keep\n");
}

TEST(HostilePath, FifoIsNotARegularFileAndNeverBlocks) {
  TempDir dir;
  const std::string lock = dir / "fifo.pid";
  ASSERT_EQ(::mkfifo(lock.c_str(), 0600), 0);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=not-regular inspect=not-regular break=not-regular");
  struct stat st {};
  ASSERT_EQ(::lstat(lock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(HostilePath, UnixSocketIsNotARegularFile) {
  TempDir dir;
  const std::string lock = dir / "sock.pid";
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(lock.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, lock.c_str());
  ASSERT_EQ(::bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=not-regular inspect=not-regular break=not-regular");
  struct stat st {};
  ASSERT_EQ(::lstat(lock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ::close(s);
}

TEST(HostilePath, DeviceNodeIsNotARegularFileAndIsNotOpened) {
  TempDir dir;
  const std::string lock = dir / "null.pid";
  // A character device (the null device's numbers); we are root.
  ASSERT_EQ(::mknod(lock.c_str(), S_IFCHR | 0600, makedev(1, 3)), 0) << std::strerror(errno);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=not-regular inspect=not-regular break=not-regular");
  EXPECT_TRUE(exists(lock));
}

TEST(HostilePath, HardLinkedStaleLookingFileIsNeverRemoved) {
  TempDir dir;
  const std::string lock = dir / "hard.pid";
  const std::string other = dir / "other-name";
  // A pid file of a dead pid: stale, were it not hard-linked.
  const std::string stale = std::to_string(dead_pid()) + "\n";
  write_file(other, stale, 0600);
  ASSERT_EQ(::link(other.c_str(), lock.c_str()), 0);
  EXPECT_EQ(codes_of_all_entry_points(lock), "acquire=hard-linked inspect=ok break=hard-linked");
  EXPECT_EQ(read_file(lock), stale);
  EXPECT_EQ(read_file(other), stale);
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST(HostilePath, HardLinkToAStalePidlockRecordIsNeverRemoved) {
  TempDir dir;
  const std::string lock = dir / "hard2.pid";
  const std::string backup = dir / "backup-of-lock";
  Child holder = Child::holder({"acquire", lock});
  ASSERT_TRUE(holder.read_line());
  holder.kill();
  holder.wait();
  ASSERT_EQ(::link(lock.c_str(), backup.c_str()), 0);
  LockManager manager;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::hard_linked_lock_file);
  EXPECT_TRUE(exists(lock));
  EXPECT_TRUE(exists(backup));
  EXPECT_EQ(first_line(lock), std::to_string(holder.pid()));
}

TEST(HostilePath, PathsThatNameNoFileAreInvalidArguments) {
  LockManager manager;
  for (const char* bad : {"", "/", "/tmp/..", "."}) {
    std::error_code ec;
    LockHandle h = manager.acquire(bad, {}, ec);
    EXPECT_TRUE(ec) << "\"" << bad << "\"";
    EXPECT_FALSE(h.held());
  }
}

}  // namespace
