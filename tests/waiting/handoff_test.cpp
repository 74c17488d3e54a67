// Waiting acquires with real processes: hand-off on release and on death,
// the deadline, cancellation, sixteen contending processes, a lock file
// re-created under its waiters, and an idle waiter's CPU use.
#include "support/test_support.hpp"

#include "posix/syscalls.hpp"
#include "posix/system.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <new>
#include <optional>
#include <thread>

namespace {

using namespace pidlock_test;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using pidlock::AcquireOptions;
using pidlock::errc;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using Clock = std::chrono::steady_clock;
using pidlock::detail::UniqueFd;

ino_t inode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_ino;
}

struct flock one_byte(short type, off_t byte) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fl;
}

AcquireOptions waiting(std::optional<milliseconds> timeout = std::nullopt) {
  AcquireOptions o;
  o.wait = true;
  // Every wait is bounded, so that a bug shows as a failure, not a hang.
  o.timeout = timeout ? *timeout : milliseconds(20000);
  // Only the kernel's notifications may wake these waiters: with the
  // periodic recheck pushed past every deadline, a lost wake-up fails the
  // test instead of being hidden by the safety net.
  o.recheck_interval = std::chrono::minutes(1);
  return o;
}

TEST(Handoff, WaiterGetsTheLockWhenTheHolderReleases) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());

  LockManager manager;
  std::error_code ec;
  // Not waiting: held.
  LockHandle refused = manager.acquire(path, {}, ec);
  ASSERT_EQ(ec, errc::held);

  const ino_t before = inode_of(path);
  std::future<bool> released = when_this_thread_waits([&] { EXPECT_TRUE(holder.release()); });
  LockHandle handle = manager.acquire(path, waiting(), ec);
  EXPECT_TRUE(released.get()) << "the acquire never blocked in poll()";
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(handle.held());
  EXPECT_FALSE(handle.took_over()) << "a released lock is not a take-over";
  EXPECT_FALSE(handle.previous_holder().has_value());
  EXPECT_EQ(handle.record().pid, ::getpid());
  // Handed over in place: the holder saw us waiting and left its file to
  // us, which now holds our record.
  EXPECT_EQ(inode_of(path), before) << "the lock file was removed and re-created, not handed over";
  EXPECT_EQ(first_line(path), std::to_string(::getpid()));
  EXPECT_FALSE(handle.release());
  EXPECT_FALSE(exists(path)) << "with nobody waiting, release removes the file";
}

// What a waiter does to be handed a lock in place (System::announce_waiter):
// a shared OFD lock on the second byte, through a writable descriptor.
UniqueFd announce_as_waiter(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  struct flock fl = one_byte(F_RDLCK, 1);
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  EXPECT_EQ(::fcntl(fd.get(), F_OFD_SETLK, &fl), 0) << std::strerror(errno);
  return fd;
}

// A waiter that announced itself and went away before taking the lock
// (its deadline passed just then) leaves the file released: stale, with
// the reason, and taken over in place without a recovery.
TEST(Handoff, AFileReleasedToAWaiterThatNeverTookItIsTakenOverWithoutRecovery) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  const pid_t holder_pid = holder.pid();
  const ino_t before = inode_of(path);
  {
    UniqueFd waiter = announce_as_waiter(path);
    ASSERT_TRUE(holder.release());
  }
  ASSERT_TRUE(exists(path)) << "the holder removed the file although a waiter was announced";
  EXPECT_FALSE(kernel_lock_held(path));

  LockManager manager;
  std::error_code ec;
  Inspection insp = manager.inspect(path, {}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(insp.verdict, pidlock::Verdict::kStale);
  EXPECT_EQ(insp.reason, pidlock::Reason::kReleased) << insp.detail;
  ASSERT_TRUE(insp.holder.has_value());
  EXPECT_EQ(insp.holder->pid, holder_pid);
  EXPECT_EQ(insp.holder->status, pidlock::kReleasedStatus);

  LockHandle handle = manager.acquire(path, {}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_FALSE(handle.took_over()) << "a released file needs no recovery";
  EXPECT_FALSE(handle.previous_holder().has_value());
  EXPECT_EQ(inode_of(path), before);
  EXPECT_EQ(first_line(path), std::to_string(::getpid()));
  EXPECT_FALSE(handle.release());
  EXPECT_FALSE(exists(path));
}

// A waiter that may read the lock file but not write it cannot announce
// itself: it waits unannounced, the holder (seeing nobody announced)
// removes its file at release, and the waiter publishes a file of its own.
// Root's rights would hide all of this: the waiter runs as nobody.
TEST(Handoff, AWaiterThatMayNotWriteTheFileWaitsUnannouncedAndGetsTheLock) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 01777), 0) << std::strerror(errno);
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  AcquireOptions readable;
  readable.mode = 0644;
  std::error_code ec;
  LockHandle holder = manager.acquire(path, readable, ec);
  ASSERT_FALSE(ec) << ec.message();

  Pipe result;
  Child waiter = Child::fork([&]() -> int {
    result.close_read();
    if (!drop_privileges(kNobody)) return 10;  // privileges not dropped: the test would prove nothing
    if (::open(path.c_str(), O_RDWR | O_CLOEXEC) >= 0 || errno != EACCES) return 11;
    LockManager m;
    std::error_code wec;
    LockHandle mine = m.acquire(path, waiting(), wec);
    if (wec) return 12;
    struct stat st {};
    // Its own: nobody's, where the holder's was root's (the inode number
    // proves nothing: the new file may get the freed one back).
    if (::lstat(path.c_str(), &st) != 0 || st.st_uid != kNobody || mine.took_over()) return 13;
    write_byte(result.write_end(), 'G');
    return mine.release() ? 14 : 0;
  });
  result.close_write();
  ASSERT_TRUE(wait_until_sleeping_in_poll(waiter.pid())) << "the waiter never slept";
  EXPECT_FALSE(holder.release());
  EXPECT_EQ(read_byte(result.read_end(), 20s), 'G');
  EXPECT_TRUE(waiter.exited_with(0, 25s));
  EXPECT_FALSE(exists(path));
}

// A holder that forked after acquiring shares its open file description,
// and with it the lock, with the child: the lock lives as long as any
// process that inherited it. Its release leaves the file, held by the
// child; the waiter gets the lock when the child lets go (its exit closes
// the description, which wakes the waiter), as a hand-over (the owner
// released it), not a take-over. With the periodic recheck pushed to a
// minute, a waiter that is not woken then fails the 20 s deadline.
TEST(Handoff, AWaiterGetsTheLockWhenTheLastProcessSharingItsDescriptionLetsGo) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  std::error_code ec;
  LockHandle holder = manager.acquire(path, {}, ec);
  ASSERT_FALSE(ec) << ec.message();
  Pipe stop;
  Child sharer = Child::fork([&]() -> int {  // keeps the description open
    stop.close_write();
    (void)read_byte(stop.read_end(), 60s);
    return 0;
  });
  stop.close_read();

  Pipe result;
  Child waiter = Child::fork([&]() -> int {
    result.close_read();
    LockManager m;
    std::error_code wec;
    LockHandle mine = m.acquire(path, waiting(20000ms), wec);
    if (wec) return 1;
    write_byte(result.write_end(), mine.took_over() ? 'T' : 'G');
    return mine.release() ? 2 : 0;
  });
  result.close_write();
  ASSERT_TRUE(wait_until_sleeping_in_poll(waiter.pid())) << "the waiter never slept";
  EXPECT_FALSE(holder.release());
  EXPECT_TRUE(exists(path)) << "released while a process that inherited the lock still holds it";
  EXPECT_FALSE(read_byte(result.read_end(), 300ms).has_value()) << "the waiter got a lock its sharer still holds";
  write_byte(stop.write_end());
  EXPECT_TRUE(sharer.exited_with(0, 25s));
  EXPECT_EQ(read_byte(result.read_end(), 25s), 'G') << "the waiter was not handed the lock";
  EXPECT_TRUE(waiter.exited_with(0, 25s));
}

// A child forked while a thread waits announced gets copies of the
// thread's descriptors. Were it to keep them, it would go on announcing a
// waiter after the wait ended, and the holder would hand its file over to
// nobody, leaving it on disk, marked released, naming the holder's live pid.
TEST(Handoff, AChildForkedWhileAThreadWaitsDoesNotAnnounceAWaiter) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());

  LockManager manager;
  pidlock::Canceller canceller;
  AcquireOptions options = waiting();
  options.canceller = &canceller;
  Pipe started;
  Pipe stop;
  std::optional<Child> forked;
  bool announced_at_fork = false;
  std::future<bool> cancelled = when_this_thread_waits([&] {
    announced_at_fork = waiter_announced(path);
    forked = Child::fork([&]() -> int {  // lives on with copies of our descriptors
      stop.close_write();
      // After fork()'s handlers in the child: what they did is done.
      write_byte(started.write_end());
      (void)read_byte(stop.read_end(), 60s);
      return 0;
    });
    canceller.cancel();
  });
  std::error_code ec;
  LockHandle handle = manager.acquire(path, options, ec);
  EXPECT_TRUE(cancelled.get()) << "the acquire never blocked in poll()";
  EXPECT_EQ(ec, errc::cancelled) << ec.message();
  ASSERT_TRUE(forked.has_value());
  stop.close_read();
  started.close_write();
  ASSERT_EQ(read_byte(started.read_end(), 25s), '.') << "the forked child never ran";
  EXPECT_TRUE(announced_at_fork) << "the waiter had not announced itself when the child was forked";
  EXPECT_FALSE(forked->wait(0ms).has_value()) << "the forked child is gone already";

  EXPECT_FALSE(waiter_announced(path)) << "the forked child still announces a waiter";
  EXPECT_TRUE(holder.release());
  EXPECT_FALSE(exists(path)) << "the holder handed its file over to a waiter that is not there";
  write_byte(stop.write_end());
  EXPECT_TRUE(forked->exited_with(0, 25s));
}

TEST(Handoff, WaiterTakesOverWhenTheHolderIsKilled) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  const pid_t holder_pid = holder.pid();

  LockManager manager;
  std::error_code ec;
  std::future<bool> killed = when_this_thread_waits([&] { holder.kill(); });
  LockHandle handle = manager.acquire(path, waiting(), ec);
  EXPECT_TRUE(killed.get()) << "the acquire never blocked in poll()";
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(handle.held());
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder().has_value());
  ASSERT_TRUE(handle.previous_holder()->holder.has_value());
  EXPECT_EQ(handle.previous_holder()->holder->pid, holder_pid);
  EXPECT_EQ(handle.previous_holder()->verdict, pidlock::Verdict::kStale);
}

// The kernel sends IN_CLOSE_WRITE before it drops the closing description's
// lock (__fput: fsnotify_close, then locks_remove_file): a waiter that looks
// in between sees the dead holder's lock still held, and no further event
// comes. This System makes that window wide: it reports the lock held at
// the first look after the holder's death -- a query (a waiter that looks
// at the file afresh) or a lock attempt (a waiter announced on the file).
// With `announcing` false, waiters cannot announce themselves.
class HeldAtTheNextLook : public pidlock::detail::SystemWrapper {
 public:
  explicit HeldAtTheNextLook(bool announcing)
      : SystemWrapper(pidlock::detail::real_system()), announcing_(announcing) {}
  std::atomic<int> lies{0};
  pidlock::detail::LockQuery query_lock(int fd) override {
    if (lie()) return pidlock::detail::LockQuery::kHeld;
    return SystemWrapper::query_lock(fd);
  }
  pidlock::detail::KernelLock try_lock(int fd) override {
    if (lie()) return pidlock::detail::KernelLock::kHeldByOther;
    return SystemWrapper::try_lock(fd);
  }
  int announce_waiter(int fd) override {
    if (announcing_) return SystemWrapper::announce_waiter(fd);
    errno = ENOLCK;
    return -1;
  }

 private:
  bool lie() {
    int n = lies.load();
    while (n > 0 && !lies.compare_exchange_weak(n, n - 1)) {
    }
    return n > 0;
  }
  const bool announcing_;
};

// An announced waiter does not look: the kernel grants it the dead
// holder's lock once it is really gone. A waiter that cannot announce
// itself looks, and must look again.
void a_waiter_that_looks_too_early_looks_again(bool announcing) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  HeldAtTheNextLook system(announcing);
  pidlock_test::ScopedSystem scoped(&system);

  LockManager manager;
  std::error_code ec;
  AcquireOptions options = waiting(20000ms);
  options.recheck_interval = 60000ms;  // only an event, or a second look, can end the wait in time
  std::future<bool> killed = when_this_thread_waits([&] {
    system.lies = 1;
    holder.kill();
  });
  LockHandle handle = manager.acquire(path, options, ec);
  EXPECT_TRUE(killed.get()) << "the acquire never blocked in poll()";
  if (announcing) EXPECT_EQ(system.lies.load(), 1) << "the queued waiter tried the lock instead of waiting its turn";
  else EXPECT_EQ(system.lies.load(), 0) << "the look after the death never happened";
  ASSERT_FALSE(ec) << ec.message() << " (the waiter slept on a dead holder's lock)";
  EXPECT_TRUE(handle.took_over());
}

TEST(Handoff, AQueuedWaiterIsGrantedTheDeadHoldersLockWithoutLooking) {
  a_waiter_that_looks_too_early_looks_again(/*announcing=*/true);
}

TEST(Handoff, AWaiterThatCannotAnnounceItselfAndLooksTooEarlyLooksAgain) {
  a_waiter_that_looks_too_early_looks_again(/*announcing=*/false);
}

// A waiting acquire of `path` while `holder` releases it: the release
// comes once this thread sleeps in the acquire, after `at_release` (which
// may arm the test's System).
LockHandle acquire_as_it_is_released(LockManager& manager, const std::string& path, HeldInChild& holder,
                                     std::optional<milliseconds> timeout, std::error_code& ec,
                                     const std::function<void()>& at_release = {}) {
  std::future<bool> released = when_this_thread_waits([&] {
    if (at_release) at_release();
    EXPECT_TRUE(holder.release());
  });
  LockHandle handle = manager.acquire(path, waiting(timeout), ec);
  EXPECT_TRUE(released.get()) << "the acquire never blocked in poll()";
  return handle;
}

// A queue that never grants the lock: the waiter stays queued (the call
// sleeps, as F_OFD_SETLKW does, in a cancellation point) until its wait
// ends. With `lies` set, that many lock attempts find the lock held: the
// waiter's last look, as it leaves the queue, comes too early.
class QueueNeverGrants : public pidlock::detail::SystemWrapper {
 public:
  QueueNeverGrants() : SystemWrapper(pidlock::detail::real_system()) {}
  std::atomic<int> queued{0};
  std::atomic<int> lies{0};
  int wait_lock(int) override {
    ++queued;
    for (;;) ::pause();
  }
  pidlock::detail::KernelLock try_lock(int fd) override {
    int n = lies.load();
    while (n > 0 && !lies.compare_exchange_weak(n, n - 1)) {
    }
    if (n > 0) return pidlock::detail::KernelLock::kHeldByOther;
    return SystemWrapper::try_lock(fd);
  }
};

// The holder hands the lock over (the only waiter announced) just as the
// waiter's deadline passes, too late for the waiter to be granted it: the
// waiter reports the lock held, and removes the released file on its way
// out rather than leave it behind.
TEST(Handoff, AWaiterThatTimesOutAfterAHandOverRemovesTheReleasedFile) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  QueueNeverGrants system;
  pidlock_test::ScopedSystem scoped(&system);

  LockManager manager;
  std::error_code ec;
  LockHandle handle = acquire_as_it_is_released(manager, path, holder, 1500ms, ec, [&] {
    system.lies = 1;  // the waiter's look as it leaves the queue
  });
  EXPECT_EQ(ec, errc::held) << ec.message();
  EXPECT_EQ(system.queued.load(), 1) << "the waiter never queued for the lock";
  EXPECT_EQ(system.lies.load(), 0) << "the waiter left the queue without a look at the lock";
  EXPECT_FALSE(exists(path)) << "the released file was left behind";
}

// glibc may act on a cancel on the way back from a lock call the kernel
// has granted: the thread that kept the waiter's place is gone without
// saying so. This System makes that the rule: its lock call takes the
// lock, then sleeps in a cancellation point until the deadline cancels it.
// The waiter must find the lock its description holds, and keep it.
class GrantedButNeverReported : public pidlock::detail::SystemWrapper {
 public:
  GrantedButNeverReported() : SystemWrapper(pidlock::detail::real_system()) {}
  std::atomic<int> granted{0};
  int wait_lock(int fd) override {
    for (;;) {
      if (granted == 0 && SystemWrapper::try_lock(fd) == pidlock::detail::KernelLock::kAcquired) ++granted;
      ::usleep(1000);  // a cancellation point, as the real call is
    }
  }
};

TEST(Handoff, ALockGrantedAsTheWaitEndsIsKeptNotLost) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  GrantedButNeverReported system;
  pidlock_test::ScopedSystem scoped(&system);

  LockManager manager;
  std::error_code ec;
  LockHandle handle = acquire_as_it_is_released(manager, path, holder, 1500ms, ec);
  EXPECT_EQ(system.granted.load(), 1) << "the lock was never granted to the waiter's description";
  ASSERT_FALSE(ec) << ec.message() << " (a lock granted to the waiter was dropped)";
  EXPECT_TRUE(handle.held());
  EXPECT_FALSE(handle.took_over()) << "its holder released it: a hand-off, not a take-over";
}

// A file system that takes locks but will not wait for one (F_OFD_SETLKW
// fails: some FUSE and NFS servers): the waiter waits unannounced, and
// still gets the lock when its holder releases.
TEST(Handoff, WhereLocksCannotBeWaitedForTheWaiterWaitsUnannounced) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  pidlock_test::FaultSystem system;
  system.always(pidlock_test::Call::kWaitLock, pidlock_test::FaultKind::kErrno, EOPNOTSUPP);
  pidlock_test::ScopedSystem scoped(&system);

  LockManager manager;
  std::error_code ec;
  LockHandle handle = acquire_as_it_is_released(manager, path, holder, std::nullopt, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(handle.held());
}

// A lock released by a static destructor at exit, to an announced waiter:
// the release formats the record after the thread's own objects are gone
// (exit() destroys them first), and must neither crash nor leave the
// waiter a stale file.
void hold_until_exit_in_a_static(const std::string& path, int ready_fd) {
  static LockManager manager;
  static LockHandle handle = manager.acquire(path);
  (void)!::write(ready_fd, "x", 1);
  // The parent announces itself and waits; then exit() runs the destructors.
  char c;
  (void)!::read(ready_fd, &c, 1);
}

TEST(Handoff, AReleaseInAStaticDestructorAtExitHandsTheFileOver) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(sv[0]);
    hold_until_exit_in_a_static(path, sv[1]);
    std::exit(0);
  }
  ::close(sv[1]);
  char c;
  ASSERT_EQ(::read(sv[0], &c, 1), 1);
  LockManager manager;
  std::error_code ec;
  std::future<bool> go = when_this_thread_waits([&] { (void)!::write(sv[0], "x", 1); });
  LockHandle handle = manager.acquire(path, waiting(), ec);
  EXPECT_TRUE(go.get()) << "the acquire never waited";
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(sv[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the holder died at exit (status " << status << ")";
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_FALSE(handle.took_over()) << "the holder released it at exit: a hand-off, not a take-over";
}

TEST(Handoff, DeadlineExpiresWithTheHolderNamed) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());

  LockManager manager;
  std::error_code ec;
  Inspection seen;
  AcquireOptions options;
  options.timeout = 300ms;  // implies waiting
  auto start = Clock::now();
  LockHandle handle = manager.acquire(path, options, ec, &seen);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(ec, errc::held);
  EXPECT_FALSE(handle.held());
  EXPECT_EQ(seen.verdict, pidlock::Verdict::kHeld);
  ASSERT_TRUE(seen.holder.has_value());
  EXPECT_EQ(seen.holder->pid, holder.pid());
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 5s) << "sanity bound only";

  // The throwing form throws LockHeldError with the same evidence.
  start = Clock::now();
  try {
    LockHandle never = manager.acquire(path, options);
    ADD_FAILURE() << "acquire of a held lock returned";
  } catch (const pidlock::LockHeldError& e) {
    EXPECT_EQ(e.code(), errc::held);
    ASSERT_TRUE(e.holder().holder.has_value());
    EXPECT_EQ(e.holder().holder->pid, holder.pid());
  }
  EXPECT_GE(Clock::now() - start, 300ms);
  EXPECT_TRUE(holder.release()) << "the holder's lock was disturbed by the timed-out waiters";
}

TEST(Handoff, CancellerStopsAWaitFromAnotherThreadAndResetRearms) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());

  LockManager manager;
  pidlock::Canceller canceller;
  AcquireOptions options = waiting();
  options.canceller = &canceller;
  std::error_code ec;
  std::future<bool> cancelled = when_this_thread_waits([&] { canceller.cancel(); });
  auto start = Clock::now();
  LockHandle handle = manager.acquire(path, options, ec);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(cancelled.get()) << "the acquire never blocked in poll()";
  EXPECT_EQ(ec, errc::cancelled);
  EXPECT_FALSE(handle.held());
  EXPECT_LT(elapsed, 10s) << "the cancel did not wake the waiter (its deadline did)";
  EXPECT_TRUE(canceller.cancelled());

  // Still cancelled: a new wait ends at once.
  handle = manager.acquire(path, options, ec);
  EXPECT_EQ(ec, errc::cancelled);

  // Re-armed: the next wait runs to its deadline, then reports the holder.
  canceller.reset();
  EXPECT_FALSE(canceller.cancelled());
  options.timeout = 200ms;
  handle = manager.acquire(path, options, ec);
  EXPECT_EQ(ec, errc::held);

  // And after the holder leaves, a re-armed canceller does not get in the way.
  options.timeout = 20s;
  std::future<bool> released = when_this_thread_waits([&] { EXPECT_TRUE(holder.release()); });
  handle = manager.acquire(path, options, ec);
  EXPECT_TRUE(released.get());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(handle.held());
}

// Shared by the contending processes (MAP_SHARED|MAP_ANONYMOUS survives
// fork). Lock-free atomics work across processes.
struct Arena {
  static constexpr int kProcesses = 16;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> acquisitions{0};
  std::atomic<int> errors{0};
  std::atomic<int> wrong_record{0};
  std::atomic<int> took_over{0};
  std::atomic<int> done[kProcesses];
};
static_assert(std::atomic<int>::is_always_lock_free);

TEST(Handoff, SixteenProcessesEachGetTheLockInTurn) {
  constexpr int kRounds = 10;
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  void* memory = ::mmap(nullptr, sizeof(Arena), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  Arena* arena = new (memory) Arena();
  for (auto& d : arena->done) d.store(0);

  Pipe start;  // EOF on it starts every contender at once
  std::vector<Child> contenders;
  for (int i = 0; i < Arena::kProcesses; ++i) {
    contenders.push_back(Child::fork([&, i]() -> int {
      start.close_write();
      read_byte(start.read_end(), 30s);
      LockManager manager;
      for (int round = 0; round < kRounds; ++round) {
        std::error_code ec;
        LockHandle handle = manager.acquire(path, waiting(30s), ec);
        if (ec || !handle.held()) {
          arena->errors.fetch_add(1);
          return 1;
        }
        int now = arena->inside.fetch_add(1) + 1;
        int max = arena->max_inside.load();
        while (now > max && !arena->max_inside.compare_exchange_weak(max, now)) {
        }
        arena->acquisitions.fetch_add(1);
        if (handle.took_over()) arena->took_over.fetch_add(1);
        if (handle.record().pid != ::getpid()) arena->wrong_record.fetch_add(1);
        std::this_thread::sleep_for(1500us);  // the critical section
        arena->inside.fetch_sub(1);
        if (handle.release()) {
          arena->errors.fetch_add(1);
          return 2;
        }
        arena->done[i].fetch_add(1);
      }
      return 0;
    }));
  }
  start.close_read();
  start.close_write();  // go
  for (size_t i = 0; i < contenders.size(); ++i)
    EXPECT_TRUE(contenders[i].exited_with(0, 45s)) << "contender " << i;

  EXPECT_EQ(arena->max_inside.load(), 1) << "two holders at once";
  EXPECT_EQ(arena->errors.load(), 0);
  EXPECT_EQ(arena->wrong_record.load(), 0);
  EXPECT_EQ(arena->took_over.load(), 0) << "every hand-off was a release";
  EXPECT_EQ(arena->acquisitions.load(), Arena::kProcesses * kRounds);
  for (int i = 0; i < Arena::kProcesses; ++i) EXPECT_EQ(arena->done[i].load(), kRounds) << "contender " << i;
  // Nothing left behind: no lock file, no hidden temporary file.
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
  ::munmap(memory, sizeof(Arena));
}

// Waiters blocked on holder A's file. The file is deleted (A lives on,
// holding the kernel lock of an inode that has no name any more) and B
// creates a new one. Everyone must get the lock in turn; nobody may stay
// stuck on A's orphaned inode.
TEST(Handoff, WaitersFollowALockFileDeletedAndRecreated) {
  constexpr int kWaiters = 3;
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild a(path);
  ASSERT_TRUE(a.ok());

  Pipe results;
  std::vector<Child> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(Child::fork([&]() -> int {
      results.close_read();
      LockManager manager;
      std::error_code ec;
      LockHandle handle = manager.acquire(path, waiting(20s), ec);
      if (ec) return 1;
      write_byte(results.write_end(), 'G');
      std::this_thread::sleep_for(2ms);
      return handle.release() ? 2 : 0;
    }));
  }
  results.close_write();
  for (auto& w : waiters) ASSERT_TRUE(wait_until_sleeping_in_poll(w.pid())) << "waiter " << w.pid();

  ASSERT_EQ(::unlink(path.c_str()), 0);
  // B, this process, re-creates the lock. A waiter may beat it to the new
  // name (the deletion woke them all): then B waits its turn.
  LockManager b;
  std::error_code ec;
  LockHandle handle = b.acquire(path, waiting(20s), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_FALSE(handle.took_over());
  EXPECT_FALSE(handle.release());

  for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(read_byte(results.read_end(), 25s), 'G') << "waiter " << i;
  for (auto& w : waiters) EXPECT_TRUE(w.exited_with(0, 25s));
  EXPECT_FALSE(exists(path));
  // A still holds its orphan, and its release reports the loss instead of
  // removing anybody else's file.
  a.kill();
}

TEST(Handoff, AnIdleWaiterUsesNoCpu) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());

  Child waiter = Child::fork([&]() -> int {
    LockManager manager;
    std::error_code ec;
    LockHandle handle = manager.acquire(path, waiting(30s), ec);
    return ec ? 1 : 0;
  });
  ASSERT_TRUE(wait_until_sleeping_in_poll(waiter.pid()));
  // Wake it once (a touch is an event on the file it watches): it must
  // look, find the lock still held, and go back to sleep.
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), nullptr, 0), 0);
  EXPECT_TRUE(wait_until_sleeping_in_poll(waiter.pid(), 2s)) << "the waiter did not settle after a wake";
  std::optional<milliseconds> before = cpu_time(waiter.pid());
  std::this_thread::sleep_for(1s);  // the window measured, not a synchronisation
  std::optional<milliseconds> after = cpu_time(waiter.pid());
  ASSERT_TRUE(before && after);
  EXPECT_LT((*after - *before).count(), 50) << "ms of CPU in 1 s: a waiter should sleep in the kernel";
  EXPECT_FALSE(waiter.wait(0ms).has_value()) << "the waiter stopped waiting";

  EXPECT_TRUE(holder.release());
  EXPECT_TRUE(waiter.exited_with(0));
}

// The same for a lock known only by pid: a PostgreSQL postmaster.pid whose
// process is alive (no kernel lock: pid evidence, a pidfd wakes the waiter).
// When that process dies, the waiter takes the lock over.
TEST(Handoff, AnIdleWaiterOnAPostgresqlLockUsesNoCpuAndTakesOverAtDeath) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  Pipe forever;
  Child postmaster = Child::fork([&]() -> int {
    forever.close_write();
    read_byte(forever.read_end(), std::chrono::hours(1));
    return 0;
  });
  forever.close_read();
  {
    std::ofstream out(path);
    out << postmaster.pid() << "\n" << dir.path() << "\n" << ::time(nullptr) << "\n5432\n/tmp\n*\n"
        << "  5432001    131072\nready   \n";
  }
  LockManager inspector;
  ASSERT_EQ(inspector.inspect(path).reason, pidlock::Reason::kPidAlive) << "the premise";

  Pipe report;
  Child waiter = Child::fork([&]() -> int {
    report.close_read();
    LockManager manager;
    std::error_code ec;
    LockHandle handle = manager.acquire(path, waiting(30s), ec);
    if (ec) return 1;
    const auto& previous = handle.previous_holder();
    write_line(report.write_end(), std::to_string(previous && previous->holder ? previous->holder->pid : 0));
    return 0;
  });
  report.close_write();
  ASSERT_TRUE(wait_until_sleeping_in_poll(waiter.pid()));
  // Wake the waiter once, as its periodic recheck or a /tmp cleaner's
  // touch would: it must look, find the holder alive, and sleep again.
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), nullptr, 0), 0);
  // Not asserted: a waiter that never settles shows as CPU time below.
  bool settled = wait_until_sleeping_in_poll(waiter.pid(), 2s);
  std::optional<milliseconds> before = cpu_time(waiter.pid());
  std::this_thread::sleep_for(1s);  // the window measured, not a synchronisation
  std::optional<milliseconds> after = cpu_time(waiter.pid());
  ASSERT_TRUE(before && after);
  const auto busy = (*after - *before).count();
  EXPECT_FALSE(waiter.wait(0ms).has_value()) << "the waiter stopped waiting";

  const pid_t postmaster_pid = postmaster.pid();
  postmaster.kill(SIGKILL);
  EXPECT_TRUE(postmaster.wait(kPatience));
  EXPECT_EQ(read_line(report.read_end(), 20s), std::to_string(postmaster_pid));
  EXPECT_TRUE(waiter.exited_with(0));

  // A waiter that woke itself with the close of its own writable
  // descriptor used to spin here (fixed in e9a0f8f).
  EXPECT_LT(busy, 50) << "ms of CPU in 1 s: a waiter should sleep in the kernel"
                      << (settled ? "" : " (it never settled in poll after the wake)");
}

}  // namespace
