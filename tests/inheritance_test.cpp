// Rule 14 (G5): the lock descriptor does not leak into exec'd programs,
// unless AcquireOptions::inheritable asks for it; then the exec'd program
// keeps the kernel lock after the parent lets go.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace {

using namespace pidlock_test;
using pidlock::AcquireOptions;
using pidlock::LockHandle;
using pidlock::LockManager;

TEST(Inheritance, ExecdChildDoesNotInheritTheLockDescriptor) {
  TempDir dir;
  const std::string lock = dir / "cloexec.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  const int fd = handle.native_handle();
  ASSERT_GE(fd, 0);
  Child child = Child::holder({"fd-status", std::to_string(fd)});
  EXPECT_EQ(child.read_line(), std::optional<std::string>("closed"));
  child.kill();
  child.wait();
  EXPECT_TRUE(kernel_lock_held(lock));
}

TEST(Inheritance, ExecdProgramThatAcquiredDoesNotLeakToItsExecs) {
  // The holder program's own descriptor number is close-on-exec too.
  TempDir dir;
  const std::string lock = dir / "cloexec2.pid";
  Child holder = Child::holder({"acquire", lock});
  auto ready = holder.read_line();
  ASSERT_TRUE(ready);
  int pid = 0, fd = -1;
  ASSERT_EQ(std::sscanf(ready->c_str(), "ready %d %d", &pid, &fd), 2) << *ready;
  std::string fdinfo = read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  // fdinfo "flags:" is octal; O_CLOEXEC is 02000000.
  auto at = fdinfo.find("flags:");
  ASSERT_NE(at, std::string::npos);
  unsigned long flags = std::strtoul(fdinfo.c_str() + at + 6, nullptr, 8);
  EXPECT_TRUE(flags & O_CLOEXEC) << fdinfo;
}

TEST(Inheritance, InheritableDescriptorSurvivesExecAndKeepsTheLockHeld) {
  TempDir dir;
  const std::string lock = dir / "inherit.pid";
  AcquireOptions options;
  options.inheritable = true;
  LockManager manager;
  LockHandle handle = manager.acquire(lock, options);
  const int fd = handle.native_handle();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
  Child child = Child::holder({"fd-status", std::to_string(fd)});
  EXPECT_EQ(child.read_line(), std::optional<std::string>("open"));

  // A third descriptor on the same inode, to query the kernel lock after
  // the path is gone (release unlinks it).
  int probe = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(probe, 0);
  auto held = [probe] { return byte_locked(probe, 0); };
  EXPECT_TRUE(held());
  EXPECT_FALSE(handle.release());
  EXPECT_TRUE(exists(lock)) << "a lock lives as long as any process that inherited it";
  EXPECT_TRUE(held()) << "the exec'd child's inherited descriptor keeps the lock";
  EXPECT_EQ(manager.inspect(lock).verdict, pidlock::Verdict::kHeld);
  std::error_code ec;
  LockHandle refused = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held) << "the next acquire is refused while the inheritor lives";
  child.kill();
  child.wait();
  EXPECT_FALSE(held()) << "the last descriptor is gone: the kernel dropped the lock";
  ::close(probe);
  // Its owner released it: the next holder takes it over with no recovery due.
  LockHandle next = manager.acquire(lock);
  EXPECT_FALSE(next.took_over());
}

TEST(Inheritance, InheritedHolderKeepsOthersOutUntilItDies) {
  // A supervisor acquires inheritably, execs a worker and exits without
  // releasing; the worker (recorded with update_holder_pid) keeps the lock.
  TempDir dir;
  const std::string lock = dir / "supervised.pid";
  Pipe done;
  Child supervisor = Child::fork([&](int report) -> int {
    done.close_write();
    LockManager m;
    AcquireOptions options;
    options.inheritable = true;
    LockHandle h = m.acquire(lock, options);
    const int fd = h.native_handle();
    Child worker = Child::holder({"fd-status", std::to_string(fd)});
    auto line = worker.read_line();
    std::error_code ec;
    h.update_holder_pid(worker.pid(), ec);
    write_string(report, line.value_or("?") + " " + std::to_string(worker.pid()) + " " + (ec ? "err" : "ok") + "\n");
    wait_for_eof(done.read_end());
    // Simulate the supervisor dying (no release): _exit keeps the file.
    ::_exit(0);
  });
  done.close_read();
  auto line = supervisor.read_line();
  ASSERT_TRUE(line);
  int worker_pid = 0;
  char status[16] = {};
  char result[8] = {};
  ASSERT_EQ(std::sscanf(line->c_str(), "%15s %d %7s", status, &worker_pid, result), 3) << *line;
  // The worker is our grandchild: make sure it never outlives the test.
  struct KillAtExit {
    pid_t pid;
    ~KillAtExit() { ::kill(pid, SIGKILL); }
  } worker_guard{worker_pid};
  EXPECT_STREQ(status, "open");
  EXPECT_STREQ(result, "ok");
  done.close_write();
  EXPECT_EQ(exit_code(supervisor.wait()), 0);
  EXPECT_EQ(first_line(lock), std::to_string(worker_pid));

  LockManager manager;
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, pidlock::Verdict::kHeld);
  EXPECT_EQ(insp.reason, pidlock::Reason::kKernelLockHeld);
  std::error_code ec;
  LockHandle refused = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held);

  // The worker was the supervisor's child and is now an orphan that we
  // cannot wait for: a pidfd tells when it has exited. Its descriptors (and
  // so the lock) are closed before it becomes a zombie.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, worker_pid, 0));
  ASSERT_GE(pidfd, 0) << std::strerror(errno);
  ASSERT_EQ(::kill(worker_pid, SIGKILL), 0);
  struct pollfd p {pidfd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20000), 1) << "the worker did not die";
  ::close(pidfd);
  EXPECT_FALSE(kernel_lock_held(lock));
  LockHandle ours = manager.acquire(lock);
  EXPECT_TRUE(ours.took_over());
  EXPECT_EQ(ours.previous_holder()->holder->pid, worker_pid);
}

}  // namespace
