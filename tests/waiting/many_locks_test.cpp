// Many locks per process through one LockManager: held_count, release_all
// and ~LockManager in reverse order of acquisition (proved with inotify's
// ordered IN_DELETE events), no double release, touch and touch_all.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace pidlock_test;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using pidlock::LockHandle;
using pidlock::LockManager;

// The names deleted in a folder, in the order the kernel reports them.
class DeletionLog {
 public:
  explicit DeletionLog(const std::string& folder) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ >= 0) ::inotify_add_watch(fd_, folder.c_str(), IN_DELETE);
  }
  ~DeletionLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  DeletionLog(const DeletionLog&) = delete;
  DeletionLog& operator=(const DeletionLog&) = delete;
  bool ok() const { return fd_ >= 0; }

  // The names deleted since the last call, in order.
  std::vector<std::string> take() {
    std::vector<std::string> names;
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<struct inotify_event*>(p);
        if ((ev->mask & IN_DELETE) && ev->len > 0) names.emplace_back(ev->name);
        p += sizeof(struct inotify_event) + ev->len;
      }
    }
    return names;
  }

 private:
  int fd_ = -1;
};

// The lock files of a data directory and of three Unix sockets, PostgreSQL
// style, all in one folder so that one inotify watch orders their removal.
struct Layout {
  explicit Layout(const TempDir& dir)
      : data_lock(dir / "postmaster.pid"),
        sockets{dir / ".s.PGSQL.5432", dir / ".s.PGSQL.5433", dir / ".s.PGSQL.5434"} {}
  std::string data_lock;
  std::vector<std::string> sockets;
  // File names in order of acquisition.
  std::vector<std::string> names() const {
    std::vector<std::string> out{"postmaster.pid"};
    for (const auto& s : sockets) out.push_back(s.substr(s.rfind('/') + 1) + ".lock");
    return out;
  }
};

std::vector<LockHandle> acquire_all(LockManager& manager, const Layout& layout) {
  std::vector<LockHandle> handles;
  handles.push_back(manager.acquire(layout.data_lock));
  for (const auto& socket : layout.sockets) handles.push_back(pidlock::lock_unix_socket(manager, socket));
  return handles;
}

std::vector<std::string> reversed(std::vector<std::string> v) { return {v.rbegin(), v.rend()}; }

TEST(ManyLocks, ReleaseAllReleasesInReverseOrderOfAcquisition) {
  TempDir dir;
  Layout layout(dir);
  LockManager manager;
  std::vector<LockHandle> handles = acquire_all(manager, layout);
  EXPECT_EQ(manager.held_count(), 4u);
  for (const auto& h : handles) EXPECT_TRUE(h.held());

  DeletionLog log(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_FALSE(manager.release_all());
  EXPECT_EQ(log.take(), reversed(layout.names()));
  EXPECT_EQ(manager.held_count(), 0u);
  for (const auto& h : handles) EXPECT_FALSE(h.held());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
  // A second release_all has nothing left to do.
  EXPECT_FALSE(manager.release_all());
}

TEST(ManyLocks, TheManagersDestructorReleasesInReverseOrder) {
  TempDir dir;
  Layout layout(dir);
  DeletionLog log(dir.path());
  ASSERT_TRUE(log.ok());
  std::vector<LockHandle> handles;  // outlives the manager
  {
    LockManager manager;
    handles = acquire_all(manager, layout);
    EXPECT_EQ(log.take(), std::vector<std::string>{});
  }
  EXPECT_EQ(log.take(), reversed(layout.names()));
  for (const auto& h : handles) EXPECT_FALSE(h.held());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
}

// A fresh process (exec'd, so that nothing of the library was used before
// its global manager was constructed) exits normally: ~LockManager, run by
// exit(), releases the locks in reverse order.
TEST(ManyLocks, ANormalExitReleasesThroughAGlobalManager) {
  TempDir dir;
  Layout layout(dir);
  DeletionLog log(dir.path());
  ASSERT_TRUE(log.ok());
  Pipe out;
  Child daemon = Child::fork([&]() -> int {
    ::dup2(out.write_end(), STDOUT_FILENO);
    std::vector<std::string> args{PIDLOCK_WAITING_EXIT_HELPER, "off", layout.data_lock};
    for (const auto& s : layout.sockets) args.push_back("socket:" + s);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    return 127;
  });
  out.close_write();
  EXPECT_EQ(read_line(out.read_end()), "ready 4");
  std::optional<int> status = daemon.wait(kPatience);
  ASSERT_TRUE(status);
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "the daemon did not exit normally (status " << *status
      << "; SIGABRT with \"pure virtual method called\" meant a library singleton destroyed "
         "before the global manager)";
  EXPECT_EQ(log.take(), reversed(layout.names()));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
}

TEST(ManyLocks, AHandleReleasedEarlyIsNotReleasedAgain) {
  TempDir dir;
  Layout layout(dir);
  LockManager manager;
  std::vector<LockHandle> handles = acquire_all(manager, layout);
  const std::vector<std::string> names = layout.names();

  EXPECT_FALSE(handles[1].release());
  EXPECT_EQ(manager.held_count(), 3u);
  // Another process takes the released lock: a second release by this
  // manager would delete that process's file.
  const std::string second = dir / names[1];
  HeldInChild other(second);
  ASSERT_TRUE(other.ok());

  DeletionLog log(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_FALSE(manager.release_all()) << "no error for the handle released before";
  EXPECT_EQ(log.take(), (std::vector<std::string>{names[3], names[2], names[0]}));
  EXPECT_TRUE(exists(second)) << "release_all removed another process's lock";
  EXPECT_EQ(dir.entries(), std::vector<std::string>{names[1]});
  EXPECT_TRUE(other.release()) << "the other process's lock was disturbed";
}

// --- touch ---------------------------------------------------------------

struct timespec coarse_now() {
  // File times come from the kernel's coarse clock, which may lag
  // CLOCK_REALTIME by a tick: compare with the same clock.
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts;
}

bool not_before(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

// Sets the file's times three hours back.
bool age(const std::string& path) {
  struct timespec now = coarse_now();
  struct timespec times[2] = {{now.tv_sec - 3 * 3600, 0}, {now.tv_sec - 3 * 3600, 0}};
  return ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0;
}

TEST(Touch, TouchSetsTheLockFilesTimesToNow) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  ASSERT_TRUE(age(path));
  struct timespec before = coarse_now();
  ASSERT_FALSE(not_before(*mtime_of(path), before)) << "the file was not aged";
  handle.touch();
  std::optional<struct timespec> after = mtime_of(path);
  ASSERT_TRUE(after);
  EXPECT_TRUE(not_before(*after, before)) << "mtime " << after->tv_sec << " < " << before.tv_sec;
  EXPECT_TRUE(handle.recheck()) << "touch disturbed the record";
}

TEST(Touch, TouchAllTouchesEveryHeldLock) {
  TempDir dir;
  Layout layout(dir);
  LockManager manager;
  std::vector<LockHandle> handles = acquire_all(manager, layout);
  for (const auto& name : layout.names()) ASSERT_TRUE(age(dir / name));
  struct timespec before = coarse_now();
  EXPECT_FALSE(manager.touch_all());
  for (const auto& name : layout.names()) {
    std::optional<struct timespec> after = mtime_of(dir / name);
    ASSERT_TRUE(after) << name;
    EXPECT_TRUE(not_before(*after, before)) << name;
  }
}

TEST(Touch, TouchNeverTouchesAFileThatReplacedTheLock) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  const std::string impostor = dir / "impostor";
  int fd = ::open(impostor.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ASSERT_TRUE(age(impostor));
  ASSERT_EQ(::rename(impostor.c_str(), path.c_str()), 0);
  std::optional<struct timespec> aged = mtime_of(path);

  struct timespec before = coarse_now();
  handle.touch();  // touches the handle's own (now nameless) file
  std::optional<struct timespec> after = mtime_of(path);
  ASSERT_TRUE(aged && after);
  EXPECT_EQ(after->tv_sec, aged->tv_sec) << "touch() touched the file that replaced the lock";
  struct stat own {};
  ASSERT_EQ(::fstat(handle.native_handle(), &own), 0);
  EXPECT_TRUE(not_before(own.st_mtim, before));
}

}  // namespace
