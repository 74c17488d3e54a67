// The kernel's queue of waiters, with real processes: announced waiters
// wait in fcntl(F_OFD_SETLKW) on the lock file's holder byte, which the
// kernel (Linux >= 4.19, a tree of blocked requests) grants in the order
// the requests arrived, waking only the first in line at a release (see
// AHandOffWakesTheNewHolderAlone for who else may wake).
//
// Each test starts its waiters one at a time, each once the one before is
// seen queued (/proc/PID/task/*/syscall), so that their order in the queue
// is known; then it checks the order they are served in, who was woken,
// and who took over. A design that wakes every waiter at every release
// and lets them race for the lock fails these tests: the order comes out
// arbitrary and every waiter's context switches move.
//
// Every test runs in both of a waiting acquire's modes: unbounded (no
// deadline, no canceller: the acquire blocks in the lock call itself; the
// child arms alarm() so that a lost grant fails instead of hanging) and
// bounded (a deadline: a thread of the waiter's own keeps its place while
// the acquire sleeps in poll()).
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace pidlock_test;
using namespace std::chrono_literals;
using pidlock::AcquireOptions;
using pidlock::errc;
using pidlock::LockHandle;
using pidlock::LockManager;

constexpr int kWaiters = 8;

enum class Mode { kUnbounded, kBounded };

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return info.param == Mode::kUnbounded ? "Unbounded" : "Bounded";
}

AcquireOptions waiting(Mode mode) {
  AcquireOptions o;
  o.wait = true;
  if (mode == Mode::kBounded) o.timeout = 30s;
  // The periodic recheck wakes a bounded waiter's sleeping thread; pushed
  // past every deadline, only the queue and the file's name can wake it
  // (the wake count below sees nothing else).
  o.recheck_interval = std::chrono::minutes(1);
  return o;
}

// How a waiter child ended its wait, as it reports on the shared pipe.
struct Served {
  int index = -1;
  bool took_over = false;
  pid_t previous = 0;  // the previous holder's pid on a take-over, else 0
  std::string error;   // non-empty: the acquire failed
};

std::optional<Served> parse_served(const std::string& line) {
  std::istringstream in(line);
  Served s;
  std::string tag;
  if (!(in >> tag)) return std::nullopt;
  if (tag == "E") {
    in >> s.index;
    std::getline(in, s.error);
    if (s.error.empty()) s.error = "?";
    return s;
  }
  s.index = std::stoi(tag);
  int took = 0;
  if (!(in >> took >> s.previous)) return std::nullopt;
  s.took_over = took != 0;
  return s;
}

// A waiter child's life: waits for `path`, reports on `report` (one line,
// under PIPE_BUF, so lines of several children never interleave), holds
// until `hold_fd` reaches its end (or about a millisecond when -1),
// releases and exits 0.
int serve_in_turn(const std::string& path, int index, const AcquireOptions& options, int report, int hold_fd) {
  if (!options.timeout && !options.canceller) ::alarm(60);  // a lost grant fails, not hangs
  LockManager manager;
  std::error_code ec;
  LockHandle handle = manager.acquire(path, options, ec);
  if (ec) {
    write_line(report, "E " + std::to_string(index) + " " + ec.message());
    return 1;
  }
  pid_t previous = 0;
  if (handle.took_over() && handle.previous_holder() && handle.previous_holder()->holder)
    previous = handle.previous_holder()->holder->pid;
  write_line(report, std::to_string(index) + " " + (handle.took_over() ? "1 " : "0 ") + std::to_string(previous));
  if (hold_fd >= 0) wait_for_eof(hold_fd);
  else std::this_thread::sleep_for(1ms);
  return handle.release() ? 2 : 0;
}

// A lock held by a child, and waiter children queued behind it one at a
// time.
class QueueTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    holder_ = std::make_unique<HeldInChild>(path_);
    ASSERT_TRUE(holder_->ok());
  }

  // Forks a waiter running `body` and returns once a thread of it is
  // queued for the lock: it is then behind every waiter started before.
  ::testing::AssertionResult start_waiter(const std::function<int()>& body) {
    waiters_.push_back(Child::fork([&]() -> int {
      served_.close_read();
      hold_.close_write();
      return body();
    }));
    const pid_t pid = waiters_.back().pid();
    // Queued; and its own thread asleep too (a bounded waiter's sleeps in
    // poll() beside the thread that keeps its place), so that nothing of
    // its start is still to run when a test counts its wakes.
    if (wait_until_queued_for_lock(pid) && wait_until_sleeping_in_poll(pid)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "waiter " << waiters_.size() - 1 << " never queued for the lock";
  }

  // Starts waiter `index`, serving in turn with `options`.
  ::testing::AssertionResult start_server(int index, const AcquireOptions& options, bool hold = false) {
    const int hold_fd = hold ? hold_.read_end() : -1;
    return start_waiter([&, index, hold_fd] { return serve_in_turn(path_, index, options, served_.write_end(), hold_fd); });
  }

  // The next waiter's report.
  Served next_served() {
    std::optional<std::string> line = read_line(served_.read_end(), kPatience);
    if (!line) return Served{-1, false, 0, "no report"};
    std::optional<Served> s = parse_served(*line);
    return s ? *s : Served{-1, false, 0, "unreadable report: " + *line};
  }

  // Reads `count` reports: the indexes in the order they were served
  // (-1 for a failed or missing one, with the reason in a test failure).
  std::vector<Served> served(int count) {
    std::vector<Served> out;
    for (int i = 0; i < count; ++i) {
      out.push_back(next_served());
      EXPECT_TRUE(out.back().error.empty()) << "waiter " << out.back().index << ": " << out.back().error;
    }
    return out;
  }

  static std::vector<int> indexes(const std::vector<Served>& s) {
    std::vector<int> out;
    for (const Served& x : s) out.push_back(x.index);
    return out;
  }

  void expect_all_exit_cleanly() {
    for (size_t i = 0; i < waiters_.size(); ++i)
      EXPECT_TRUE(waiters_[i].exited_with(0)) << "waiter " << i;
  }

  TempDir dir_;
  const std::string path_ = dir_ / "postmaster.pid";
  std::unique_ptr<HeldInChild> holder_;
  Pipe served_;  // every waiter's reports
  Pipe hold_;    // its end lets waiters that hold "until told" go
  std::vector<Child> waiters_;
};

std::vector<int> zero_to(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(i);
  return v;
}

// 1. Served in the order they started waiting.
TEST_P(QueueTest, WaitersAreServedInTheOrderTheyQueued) {
  for (int i = 0; i < kWaiters; ++i) ASSERT_TRUE(start_server(i, waiting(GetParam())));
  served_.close_write();
  ASSERT_TRUE(holder_->release());
  std::vector<Served> s = served(kWaiters);
  EXPECT_EQ(indexes(s), zero_to(kWaiters));
  for (const Served& x : s) EXPECT_FALSE(x.took_over) << "waiter " << x.index << " took over a released lock";
  expect_all_exit_cleanly();
  EXPECT_FALSE(exists(path_)) << "the last waiter's release, with nobody waiting, leaves no file";
}

// 2. A waiter in the middle leaves the queue (its deadline passes, or its
// canceller fires) before the release: the kernel takes its request out
// and the ones behind it keep their order.
enum class Leaving { kDeadline, kCancelled };

class LeavingTest : public QueueTest {
 protected:
  void run(Leaving how) {
    constexpr int kLeaver = 3;
    Pipe leave;  // a byte on it cancels the leaver's wait (waiters started later share its write end)
    std::vector<int> expected;
    for (int i = 0; i < kWaiters; ++i) {
      if (i != kLeaver) {
        ASSERT_TRUE(start_server(i, waiting(GetParam())));
        expected.push_back(i);
        continue;
      }
      ASSERT_TRUE(start_waiter([&]() -> int {
        leave.close_write();
        AcquireOptions o = waiting(GetParam());
        pidlock::Canceller canceller;
        std::thread cancelling;
        if (how == Leaving::kDeadline) {
          o.timeout = 2s;
        } else {
          o.canceller = &canceller;
          cancelling = std::thread([&] {
            (void)read_byte(leave.read_end(), std::chrono::minutes(1));
            canceller.cancel();
          });
        }
        std::error_code ec;
        LockManager manager;
        LockHandle h = manager.acquire(path_, o, ec);
        if (cancelling.joinable()) cancelling.join();
        if (h.held()) write_line(served_.write_end(), std::to_string(kLeaver) + " 0 0");
        return ec == (how == Leaving::kDeadline ? errc::held : errc::cancelled) ? 0 : 3;
      }));
    }
    write_byte(leave.write_end());  // the cancelled leaver goes now; the other at its deadline
    EXPECT_TRUE(waiters_[kLeaver].exited_with(0, kPatience)) << "the leaver did not end its wait as expected";
    // Everyone behind the leaver is back in the queue before the release.
    for (int i = kLeaver + 1; i < kWaiters; ++i) ASSERT_TRUE(wait_until_queued_for_lock(waiters_[i].pid()));
    served_.close_write();
    ASSERT_TRUE(holder_->release());
    EXPECT_EQ(indexes(served(kWaiters - 1)), expected);
    expect_all_exit_cleanly();
    EXPECT_FALSE(exists(path_));
  }
};

TEST_P(LeavingTest, AWaiterWhoseDeadlinePassesLeavesTheOthersInOrder) { run(Leaving::kDeadline); }
TEST_P(LeavingTest, ACancelledWaiterLeavesTheOthersInOrder) { run(Leaving::kCancelled); }

// 3. A hand-off wakes the new holder alone. The kernel keeps blocked
// requests as a tree in which each new request hangs under the last one it
// conflicts with: for waiters of one byte, a chain in arrival order, the
// first under the holder's lock. A release wakes only the request directly
// under the lock -- the first waiter -- and when that one is granted, the
// requests hanging under it move to its new lock without being woken
// (posix_lock_inode: locks_move_blocks). Measured on Linux 6.18 in
// hundreds of runs, also under load: the first waiter's context switches
// move and no other waiter's do. A kernel without that move would wake the
// second waiter too (it finds the lock held and queues again); this test
// would then fail on it, and the bound to assert there is two. Before the
// count, every waiter has been seen asleep twice, so nothing of its start
// is still to run. Only the waiter's own threads are counted -- its main
// thread and the one queued in the lock call -- not threads a runtime adds
// (ThreadSanitizer's background thread wakes on a timer of its own).
TEST_P(QueueTest, AHandOffWakesTheNewHolderAlone) {
  for (int i = 0; i < kWaiters; ++i) ASSERT_TRUE(start_server(i, waiting(GetParam()), /*hold=*/true));
  served_.close_write();
  std::vector<std::vector<pid_t>> threads;
  std::vector<std::uint64_t> before;
  for (Child& w : waiters_) {
    const pid_t queued = thread_queued_for_lock(w.pid());
    ASSERT_GT(queued, 0);
    threads.push_back(queued == w.pid() ? std::vector<pid_t>{w.pid()} : std::vector<pid_t>{w.pid(), queued});
    before.push_back(context_switches(w.pid(), threads.back()));
  }
  ASSERT_TRUE(holder_->release());
  Served first = next_served();
  ASSERT_EQ(first.index, 0) << first.error;
  // Every other waiter is still queued (or, woken, queued again) at the count.
  for (int i = 1; i < kWaiters; ++i) ASSERT_TRUE(wait_until_queued_for_lock(waiters_[i].pid()));
  std::vector<int> woken;
  std::ostringstream counts;
  for (int i = 0; i < kWaiters; ++i) {
    const std::uint64_t n = context_switches(waiters_[i].pid(), threads[i]);
    counts << " " << i << ":" << before[i] << "->" << n;
    if (n != before[i]) woken.push_back(i);
  }
  const std::vector<int> only_the_new_holder{0};
  EXPECT_EQ(woken, only_the_new_holder) << "context switches before -> after the hand-off:" << counts.str();

  hold_.close_write();  // everyone goes, in turn
  std::vector<Served> rest = served(kWaiters - 1);
  rest.insert(rest.begin(), first);
  EXPECT_EQ(indexes(rest), zero_to(kWaiters));
  expect_all_exit_cleanly();
}

// 4. The holder is SIGKILLed: the kernel drops its lock and grants it to
// the first in line, which takes the file over (the dead holder named);
// the others are then handed it in turn, released, not taken over.
TEST_P(QueueTest, AfterTheHoldersDeathTheFirstInLineTakesOverAndTheOthersFollowInOrder) {
  const pid_t holder_pid = holder_->pid();
  for (int i = 0; i < kWaiters; ++i) ASSERT_TRUE(start_server(i, waiting(GetParam())));
  served_.close_write();
  holder_->kill();
  std::vector<Served> s = served(kWaiters);
  EXPECT_EQ(indexes(s), zero_to(kWaiters));
  ASSERT_EQ(s.size(), static_cast<size_t>(kWaiters));
  EXPECT_TRUE(s[0].took_over) << "the first in line did not take over the dead holder's lock";
  EXPECT_EQ(s[0].previous, holder_pid) << "the take-over does not name the killed holder";
  for (size_t i = 1; i < s.size(); ++i)
    EXPECT_FALSE(s[i].took_over) << "waiter " << s[i].index << " took over a lock released to it";
  expect_all_exit_cleanly();
  EXPECT_FALSE(exists(path_));
}

// 6. A signal whose handler runs interrupts a queued waiter's lock call
// (with SA_RESTART the kernel restarts it; without, it returns EINTR and
// the library calls again): either way it queues again and gets the lock.
// The first signal goes to the process (the kernel picks a thread that
// does not block it), the others to the thread queued in the lock call
// itself (tgkill). A bounded waiter's queued thread is pidlock's own,
// which blocks every signal: the host's handler never runs there, and the
// signal stays pending on it while it keeps its place.
bool thread_blocks(pid_t pid, pid_t tid, int signal) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigBlk:", 0) != 0) continue;
    const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
    return (mask >> (signal - 1)) & 1u;
  }
  return false;
}

class SignalledTest : public QueueTest {
 protected:
  void run(bool restart) {
    Pipe handled;  // a byte per handled signal
    static int handled_fd = -1;
    handled_fd = handled.write_end();
    ASSERT_TRUE(start_waiter([&]() -> int {
      handled.close_read();
      struct sigaction sa {};
      sa.sa_handler = [](int) {
        const int saved = errno;
        (void)!::write(handled_fd, "s", 1);
        errno = saved;
      };
      sa.sa_flags = restart ? SA_RESTART : 0;
      ::sigemptyset(&sa.sa_mask);
      if (::sigaction(SIGUSR1, &sa, nullptr) != 0) return 4;
      return serve_in_turn(path_, 0, waiting(GetParam()), served_.write_end(), -1);
    }));
    handled.close_write();
    served_.close_write();
    const pid_t pid = waiters_[0].pid();
    for (int round = 0; round < 3; ++round) {
      const pid_t queued = thread_queued_for_lock(pid);
      ASSERT_GT(queued, 0);
      const bool to_thread = round > 0;
      const long rc = to_thread ? ::syscall(SYS_tgkill, pid, queued, SIGUSR1) : ::kill(pid, SIGUSR1);
      ASSERT_EQ(rc, 0) << std::strerror(errno);
      if (to_thread && GetParam() == Mode::kBounded) {
        EXPECT_TRUE(thread_blocks(pid, queued, SIGUSR1)) << "pidlock's queued thread lets the host's signals in";
        EXPECT_EQ(thread_queued_for_lock(pid), queued) << "the signal moved the waiter in the queue";
        continue;
      }
      ASSERT_EQ(read_byte(handled.read_end()), 's') << "the handler never ran";
      ASSERT_TRUE(wait_until_queued_for_lock(pid)) << "the waiter did not queue again";
    }
    EXPECT_FALSE(readable_within(served_.read_end(), 0ms)) << "the signal ended the wait";
    ASSERT_TRUE(holder_->release());
    Served s = next_served();
    EXPECT_EQ(s.index, 0) << s.error;
    EXPECT_FALSE(s.took_over);
    expect_all_exit_cleanly();
  }
};

TEST_P(SignalledTest, AHandledSignalWithSaRestartDoesNotEndTheWait) { run(/*restart=*/true); }
TEST_P(SignalledTest, AHandledSignalWithoutSaRestartDoesNotEndTheWait) { run(/*restart=*/false); }

INSTANTIATE_TEST_SUITE_P(Modes, QueueTest, ::testing::Values(Mode::kUnbounded, Mode::kBounded), mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, LeavingTest, ::testing::Values(Mode::kUnbounded, Mode::kBounded), mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, SignalledTest, ::testing::Values(Mode::kUnbounded, Mode::kBounded), mode_name);

// 5. The lock call fails (EIO through the seam): the waiting acquire
// reports it, naming the path and the step, and leaves nothing behind --
// no announcement, so the holder's release removes the file.
class WaitLockFault : public ::testing::TestWithParam<Mode> {};

TEST_P(WaitLockFault, AFailedLockCallEndsTheWaitWithAClearErrorAndLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  HeldInChild holder(path);
  ASSERT_TRUE(holder.ok());
  FaultSystem fs;
  {
    ScopedSystem scoped(&fs);
    fs.arm(Call::kWaitLock, 1, FaultKind::kErrno, EIO);
    LockManager manager;
    try {
      LockHandle h = manager.acquire(path, waiting(GetParam()));
      ADD_FAILURE() << "the acquire succeeded although its lock call failed";
    } catch (const pidlock::LockHeldError& e) {
      ADD_FAILURE() << "reported held instead of the failure: " << e.what();
    } catch (const pidlock::Error& e) {
      EXPECT_TRUE(e.code() == std::errc::io_error) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("wait for lock file"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs.hit()) << "the acquire never called wait_lock";
  }
  EXPECT_FALSE(waiter_announced(path)) << "the failed waiter is still announced";
  EXPECT_TRUE(kernel_lock_held(path)) << "the failed waiter disturbed the holder";
  ASSERT_TRUE(holder.release());
  EXPECT_FALSE(exists(path)) << "the holder handed its file over to a waiter that had gone";
}

INSTANTIATE_TEST_SUITE_P(Modes, WaitLockFault, ::testing::Values(Mode::kUnbounded, Mode::kBounded), mode_name);

}  // namespace
