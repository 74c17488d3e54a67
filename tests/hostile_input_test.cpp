// Issue 5 (G7): hostile contents and places, made real: a 1 GiB lock file,
// impossible pids on line 1 (0, negative, above pid_max, overflowing
// digits) of PostgreSQL files and plain pidfiles, a lock folder anyone may
// write to, and a read-only file system (a real read-only mount in a mount
// namespace of its own). Each gets its documented outcome (docs/
// reliability.md, "Hostile paths and contents"); nothing is followed, and
// nothing is removed or rewritten unless it is a stale lock.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"
#include "posix/system.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;
using pidlock::detail::KernelLock;
using pidlock::detail::LockQuery;

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) ADD_FAILURE() << "lstat " << path << ": " << std::strerror(errno);
  return st;
}

// Same inode, size, mode, owner, modification and change time: the file
// was neither replaced nor written, truncated, chmod'ed or touched.
void expect_untouched(const struct stat& before, const struct stat& after) {
  EXPECT_EQ(after.st_ino, before.st_ino) << "the file was replaced";
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(after.st_ctim.tv_sec, before.st_ctim.tv_sec);
  EXPECT_EQ(after.st_ctim.tv_nsec, before.st_ctim.tv_nsec);
}

pid_t pid_max_from_proc() {
  return static_cast<pid_t>(std::atol(read_file("/proc/sys/kernel/pid_max").c_str()));
}

// Forwards to the real system and records what the library asked of it
// about one watched file: the size of every read, every call that could
// change the file, and every pid probed with kill(). Optionally reports no
// kernel locks, as some NFS and FUSE mounts do, so that only the record's
// own evidence is left.
class RecordingSystem : public pidlock::detail::SystemWrapper {
 public:
  explicit RecordingSystem(bool kernel_locks = true)
      : SystemWrapper(pidlock::detail::real_system()), kernel_locks_(kernel_locks) {}

  void watch(const std::string& path) {
    struct stat st = stat_of(path);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  void forget() {
    reads.clear();
    changes.clear();
    probed.clear();
  }

  std::vector<size_t> reads;         // bytes asked for by each pread of the watched file
  std::vector<std::string> changes;  // calls that could have changed it
  std::vector<pid_t> probed;         // kill() targets, any file

  ssize_t pread(int fd, void* b, size_t c, off_t o) override {
    if (watched(fd)) reads.push_back(c);
    return target_.pread(fd, b, c, o);
  }
  ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override {
    if (watched(fd)) changes.push_back("pwrite");
    return target_.pwrite(fd, b, c, o);
  }
  int ftruncate(int fd, off_t l) override {
    if (watched(fd)) changes.push_back("ftruncate");
    return target_.ftruncate(fd, l);
  }
  int fchmod(int fd, mode_t m) override {
    if (watched(fd)) changes.push_back("fchmod");
    return target_.fchmod(fd, m);
  }
  int futimens(int fd, const struct timespec t[2]) override {
    if (watched(fd)) changes.push_back("futimens");
    return target_.futimens(fd, t);
  }
  int unlinkat(int d, const char* n, int f) override {
    struct stat st {};
    if (target_.fstatat(d, n, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
      changes.push_back("unlinkat");
    return target_.unlinkat(d, n, f);
  }
  int kill(pid_t p, int s) override {
    probed.push_back(p);
    return target_.kill(p, s);
  }
  KernelLock try_lock(int fd) override {
    return kernel_locks_ ? target_.try_lock(fd) : KernelLock::kUnsupported;
  }
  LockQuery query_lock(int fd) override {
    return kernel_locks_ ? target_.query_lock(fd) : LockQuery::kUnsupported;
  }
  LockQuery query_waiters(int fd) override {
    return kernel_locks_ ? target_.query_waiters(fd) : LockQuery::kUnsupported;
  }

 private:
  bool watched(int fd) {
    struct stat st {};
    return target_.fstat(fd, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
  }
  bool kernel_locks_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// --- a 1 GiB lock file ---

// Larger than any record (kMaxRecordBytes), so it may be somebody's data at
// a mistyped lock path: unknown (not a lock record), counted as held, never taken
// over or removed, and every look at it is one read of at most
// kMaxRecordBytes + 1 bytes. Its first bytes are a PostgreSQL record of a
// dead pid, which would be stale in a small file: the size alone decides.
TEST(HugeFile, OneGibibyteIsUnknownLeftUnchangedAndCostsOneBoundedReadPerLook) {
  TempDir dir;
  const std::string lock = dir / "huge.pid";
  const std::string head = postmaster_pid(dead_pid(), "/srv/pg/data", now());
  write_file(lock, head, 0600);
  {
    int fd = ::open(lock.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::ftruncate(fd, off_t{1} << 30), 0) << std::strerror(errno);  // sparse
    ::close(fd);
  }
  const struct stat before = stat_of(lock);
  ASSERT_EQ(before.st_size, off_t{1} << 30) << "the test needs a real 1 GiB file";

  RecordingSystem recorder;
  recorder.watch(lock);
  ScopedSystem scoped(&recorder);
  LockManager manager;
  const std::vector<size_t> one_bounded_read{pidlock::kMaxRecordBytes + 1};

  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kUnknown, Reason::kNotALockRecord)) << insp.detail;
  EXPECT_NE(insp.detail.find("larger than 4096 bytes"), std::string::npos) << insp.detail;
  EXPECT_FALSE(insp.holder) << "no record is read out of a file this size";
  EXPECT_FALSE(insp.kernel_lock_evidence);
  EXPECT_EQ(recorder.reads, one_bounded_read) << "inspect";
  recorder.forget();

  std::error_code ec;
  Inspection held;
  LockHandle handle = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_FALSE(handle.held());
  EXPECT_EQ(describe(held), describe(Verdict::kUnknown, Reason::kNotALockRecord)) << held.detail;
  EXPECT_EQ(recorder.reads, one_bounded_read) << "acquire";
  recorder.forget();

  try {
    LockHandle taken = manager.acquire(lock);
    ADD_FAILURE() << "acquired over a 1 GiB file";
  } catch (const pidlock::LockHeldError& e) {
    EXPECT_EQ(e.holder().verdict, Verdict::kUnknown);
    const std::string what = e.what();
    EXPECT_NE(what.find(lock), std::string::npos) << what;
    EXPECT_NE(what.find("a person must remove it"), std::string::npos) << what;
  }
  EXPECT_EQ(recorder.reads, one_bounded_read) << "throwing acquire";
  recorder.forget();

  pidlock::BreakResult broke = manager.break_stale(lock, {}, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(broke.removed);
  EXPECT_EQ(describe(broke.inspection), describe(Verdict::kUnknown, Reason::kNotALockRecord));
  EXPECT_EQ(recorder.reads, one_bounded_read) << "break_stale";

  EXPECT_EQ(recorder.changes, std::vector<std::string>{}) << "nothing may write, chmod or remove the file";
  expect_untouched(before, stat_of(lock));
  std::string first(head.size(), '\0');
  int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(::pread(fd, &first[0], first.size(), 0), static_cast<ssize_t>(first.size()));
  ::close(fd);
  EXPECT_EQ(first, head);
  EXPECT_FALSE(kernel_lock_held(lock)) << "no lock is left behind on it";
}

// --- impossible pids on line 1 ---

enum class PidCase {
  kZero,              // "0": no process has it; kill(0, ...) would signal our group
  kNegativeZero,      // "-0"
  kMinusOne,          // "-1": single-user pid 1; kill(-1, ...) would signal everything
  kNegativeDeadPid,   // "-N" for a pid N that has exited and been reaped
  kAbovePidMax,       // pid_max + 1, read from /proc/sys/kernel/pid_max
  kLargestPid,        // 2147483647: fits pid_t, above any pid_max
  kPastPidT,          // 2147483648: does not fit pid_t
  kOverflowingDigits, // 99999999999999999999: does not fit any integer
  kNegativeOverflow,  // -99999999999999999999
};

enum class Layout { kPostmasterPid, kPlainPidFile };

const char* name_of(PidCase c) {
  switch (c) {
    case PidCase::kZero: return "Zero";
    case PidCase::kNegativeZero: return "NegativeZero";
    case PidCase::kMinusOne: return "MinusOne";
    case PidCase::kNegativeDeadPid: return "NegativeDeadPid";
    case PidCase::kAbovePidMax: return "AbovePidMax";
    case PidCase::kLargestPid: return "LargestPid";
    case PidCase::kPastPidT: return "PastPidT";
    case PidCase::kOverflowingDigits: return "OverflowingDigits";
    case PidCase::kNegativeOverflow: return "NegativeOverflow";
  }
  return "?";
}

void PrintTo(PidCase c, std::ostream* os) { *os << name_of(c); }
void PrintTo(Layout l, std::ostream* os) { *os << (l == Layout::kPostmasterPid ? "postmaster.pid" : "pidfile"); }

// What the judge says about one case (lib/foreign_record.cpp,
// lib/core/judge.cpp): line 1 must be a number a pid can
// be on Linux (at most 4194304), or the file is no lock record at all:
// unknown, never stale, with or without kernel locks. A pid no process can
// have here (0, above pid_max) or pid 1 of the initial pid namespace is an
// impossible holder: stale unless a sign of life is found, and never given
// to kill(). Any other pid is judged by the pid rules, a negative one by
// its magnitude (PostgreSQL's single-user backend).
struct Expected {
  std::string line1;
  std::string with_kernel_locks;     // "verdict reason"
  std::string without_kernel_locks;  // "verdict reason"
  std::string detail;                // part of the inspection's detail
  std::vector<pid_t> probed;         // what one look passes to kill()
};

Expected expected_for(PidCase c, pid_t pid_max, pid_t dead) {
  const std::string not_a_lock = describe(Verdict::kUnknown, Reason::kNotALockRecord);
  const std::string impossible = describe(Verdict::kStale, Reason::kPidImpossible);
  switch (c) {
    case PidCase::kZero:
      return {"0", impossible, impossible, "pid 0 names no process", {}};
    case PidCase::kNegativeZero:
      return {"-0", impossible, impossible, "pid 0 names no process", {}};
    case PidCase::kMinusOne: {
      if (in_initial_pid_namespace()) return {"-1", impossible, impossible, "pid 1 is this machine's init", {}};
      const std::string alive = describe(Verdict::kHeld, Reason::kPidAlive);
      return {"-1", alive, alive, "pid 1 is alive", {1}};
    }
    case PidCase::kNegativeDeadPid: {
      const std::string gone = describe(Verdict::kStale, Reason::kPidDead);
      return {"-" + std::to_string(dead), gone, gone, "pid " + std::to_string(dead) + " does not exist", {dead}};
    }
    case PidCase::kAbovePidMax: {
      const long above = static_cast<long>(pid_max) + 1;
      if (above > 4194304) return {std::to_string(above), not_a_lock, not_a_lock, "no process can have", {}};
      return {std::to_string(above), impossible, impossible, "cannot exist: pid_max is " + std::to_string(pid_max), {}};
    }
    case PidCase::kLargestPid:
      return {"2147483647", not_a_lock, not_a_lock, "a number no process can have on Linux", {}};
    case PidCase::kPastPidT:
      return {"2147483648", not_a_lock, not_a_lock, "a number no process can have on Linux", {}};
    case PidCase::kOverflowingDigits:
      return {"99999999999999999999", not_a_lock, not_a_lock, "a number no process can have on Linux", {}};
    case PidCase::kNegativeOverflow:
      return {"-99999999999999999999", not_a_lock, not_a_lock, "a number no process can have on Linux", {}};
  }
  return {};
}

class ImpossiblePid : public ::testing::TestWithParam<std::tuple<PidCase, Layout>> {
 protected:
  void SetUp() override {
    pid_max_ = pid_max_from_proc();
    ASSERT_GT(pid_max_, 0);
    ASSERT_LT(pid_max_, INT_MAX) << "LargestPid must lie above pid_max";
    if (pid_case() == PidCase::kMinusOne && (::getpid() == 1 || ::getppid() == 1))
      GTEST_SKIP() << "pid 1 is this process or its parent here, so it would count as our own pid";
    expected_ = expected_for(pid_case(), pid_max_, pid_case() == PidCase::kNegativeDeadPid ? dead_pid() : 0);
    // Line 1 as the case has it, then the rest of the layout.
    if (layout() == Layout::kPlainPidFile) {
      bytes_ = expected_.line1 + "\n";
    } else {
      const std::string pg = postmaster_pid(4242, "/srv/pg/data", now());
      bytes_ = expected_.line1 + pg.substr(pg.find('\n'));
    }
  }
  PidCase pid_case() const { return std::get<0>(GetParam()); }
  Layout layout() const { return std::get<1>(GetParam()); }
  std::string expected(bool kernel_locks) const {
    return kernel_locks ? expected_.with_kernel_locks : expected_.without_kernel_locks;
  }
  bool stale(bool kernel_locks) const {
    return expected(kernel_locks).rfind(pidlock::to_string(Verdict::kStale), 0) == 0;
  }
  void write_lock() { write_file(lock_, bytes_, 0644); }
  // One look judges the record once: kill(pid, 0) of the pid's magnitude
  // if it is a possible pid, nothing otherwise. Never 0 or a negative pid,
  // which would signal our process group or every process we may signal.
  void expect_probed_only_the_magnitude(const RecordingSystem& recorder) const {
    EXPECT_EQ(recorder.probed, expected_.probed);
  }

  TempDir dir_;
  const std::string lock_ = dir_ / "postmaster.pid";
  pid_t pid_max_ = 0;
  Expected expected_;
  std::string bytes_;
};

TEST_P(ImpossiblePid, InspectGivesTheDocumentedVerdictWithAReasonAndChangesNothing) {
  write_lock();
  const struct stat before = stat_of(lock_);
  for (bool kernel_locks : {true, false}) {
    SCOPED_TRACE(kernel_locks ? "kernel locks" : "no kernel locks");
    RecordingSystem recorder(kernel_locks);
    recorder.watch(lock_);
    ScopedSystem scoped(&recorder);
    LockManager manager;
    Inspection insp = manager.inspect(lock_);
    EXPECT_EQ(describe(insp), expected(kernel_locks)) << insp.detail;
    EXPECT_NE(insp.detail.find(expected_.detail), std::string::npos) << insp.detail;
    if (insp.holder) {
      // A possible pid, read by its magnitude.
      EXPECT_EQ(std::to_string(insp.holder->pid), expected_.line1.substr(expected_.line1[0] == '-' ? 1 : 0));
      EXPECT_EQ(insp.holder->single_user, expected_.line1[0] == '-' && insp.holder->pid != 0);
      EXPECT_EQ(insp.holder->format, layout() == Layout::kPlainPidFile ? pidlock::RecordFormat::kPlainPid
                                                                       : pidlock::RecordFormat::kPostgresql);
    }
    // Stale by pid alone only for a pid that is dead or cannot exist; a
    // line 1 that is no pid makes no lock record, whatever the kernel lock.
    EXPECT_FALSE(insp.kernel_lock_evidence);
    expect_probed_only_the_magnitude(recorder);
    EXPECT_EQ(recorder.changes, std::vector<std::string>{});
  }
  EXPECT_EQ(read_file(lock_), bytes_);
  expect_untouched(before, stat_of(lock_));
}

TEST_P(ImpossiblePid, AcquireTakesOverOnlyAStaleFileAndLeavesTheRestUnchanged) {
  for (bool kernel_locks : {true, false}) {
    SCOPED_TRACE(kernel_locks ? "kernel locks" : "no kernel locks");
    write_lock();
    const struct stat before = stat_of(lock_);
    // Kept open (read-only: no sign of life), a removed file's inode cannot
    // be freed, so a new file cannot get its number and pass for it.
    const int keep_inode = ::open(lock_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(keep_inode, 0);
    RecordingSystem recorder(kernel_locks);
    recorder.watch(lock_);
    ScopedSystem scoped(&recorder);
    LockManager manager;
    std::error_code ec;
    Inspection held;
    LockHandle handle = manager.acquire(lock_, {}, ec, &held);
    expect_probed_only_the_magnitude(recorder);
    if (stale(kernel_locks)) {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_TRUE(handle.took_over());
      ASSERT_TRUE(handle.previous_holder());
      EXPECT_EQ(describe(*handle.previous_holder()), expected(kernel_locks));
      EXPECT_EQ(first_line(lock_), std::to_string(::getpid()));
      if (kernel_locks) {
        // Holding the stale inode's kernel lock, acquire rewrites it in place.
        EXPECT_EQ(stat_of(lock_).st_ino, before.st_ino) << "taken over in place, not removed";
        EXPECT_EQ(std::count(recorder.changes.begin(), recorder.changes.end(), "unlinkat"), 0);
      } else {
        // Without kernel locks a stale file is removed and a new one made.
        EXPECT_EQ(recorder.changes, std::vector<std::string>{"unlinkat"});
      }
      EXPECT_FALSE(handle.release());
      EXPECT_FALSE(exists(lock_));
    } else {
      EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
      EXPECT_FALSE(handle.held());
      EXPECT_EQ(describe(held), expected(kernel_locks)) << held.detail;
      EXPECT_EQ(recorder.changes, std::vector<std::string>{});
      EXPECT_EQ(read_file(lock_), bytes_);
      expect_untouched(before, stat_of(lock_));
    }
    ::close(keep_inode);
  }
}

TEST_P(ImpossiblePid, BreakStaleRemovesOnlyAStaleFileNeverOneItCannotJudge) {
  for (bool kernel_locks : {true, false}) {
    SCOPED_TRACE(kernel_locks ? "kernel locks" : "no kernel locks");
    write_lock();
    const struct stat before = stat_of(lock_);
    RecordingSystem recorder(kernel_locks);
    recorder.watch(lock_);
    ScopedSystem scoped(&recorder);
    LockManager manager;
    std::error_code ec;
    pidlock::BreakResult broke = manager.break_stale(lock_, {}, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(describe(broke.inspection), expected(kernel_locks)) << broke.inspection.detail;
    EXPECT_EQ(broke.removed, stale(kernel_locks));
    expect_probed_only_the_magnitude(recorder);
    if (stale(kernel_locks)) {
      EXPECT_FALSE(exists(lock_));
    } else {
      EXPECT_EQ(recorder.changes, std::vector<std::string>{});
      EXPECT_EQ(read_file(lock_), bytes_);
      expect_untouched(before, stat_of(lock_));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lines, ImpossiblePid,
    ::testing::Combine(::testing::Values(PidCase::kZero, PidCase::kNegativeZero, PidCase::kMinusOne,
                                         PidCase::kNegativeDeadPid, PidCase::kAbovePidMax, PidCase::kLargestPid,
                                         PidCase::kPastPidT, PidCase::kOverflowingDigits,
                                         PidCase::kNegativeOverflow),
                       ::testing::Values(Layout::kPostmasterPid, Layout::kPlainPidFile)),
    [](const ::testing::TestParamInfo<std::tuple<PidCase, Layout>>& info) {
      return std::string(name_of(std::get<0>(info.param))) +
             (std::get<1>(info.param) == Layout::kPostmasterPid ? "_PostmasterPid" : "_PlainPidFile");
    });

// --- a lock folder anyone may write to ---

// A process may name itself anything (prctl(PR_SET_NAME), or the name of
// the file it exec'd), and /proc/PID/stat shows that name unescaped in
// field 2: state, parent and start time are read past its last ')'. The
// expected values come from the tests' own reading of /proc.
TEST(HostileProcessName, StateParentAndStartTimeAreReadPastANameWithSpacesAndParentheses) {
  const char kName[] = "x) R 1 (9 9";  // 11 characters: within TASK_COMM_LEN
  Child child = Child::fork([&](int report_fd) {
    if (::prctl(PR_SET_NAME, kName) != 0) return 1;
    if (::write(report_fd, "ready\n", 6) != 6) return 2;
    for (;;) ::pause();
  });
  ASSERT_EQ(child.read_line(), "ready");
  std::string comm = read_file("/proc/" + std::to_string(child.pid()) + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  ASSERT_EQ(comm, kName) << "the child does not carry the hostile name";

  pidlock::detail::ProcessStat st;
  ASSERT_TRUE(pidlock::detail::real_system().process_stat(child.pid(), &st));
  EXPECT_EQ(st.state, proc_state(child.pid()));
  EXPECT_EQ(st.parent, ::getpid());
  EXPECT_EQ(st.start_ticks, proc_start_ticks(child.pid()));
  EXPECT_GT(st.start_ticks, 0u);

  child.kill(SIGKILL);
  child.wait_exited_keep_zombie();
  ASSERT_TRUE(pidlock::detail::real_system().process_stat(child.pid(), &st));
  EXPECT_EQ(st.state, 'Z') << "a zombie with a hostile name must still read as a zombie";
  EXPECT_EQ(st.start_ticks, proc_start_ticks(child.pid()));
}

TEST(WorldWritableFolder, GuardDataDirectoryRefusesItNamingThePathAndTheReason) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  const std::string path = canonical(data);
  for (mode_t mode : {mode_t{0777}, mode_t{01777}}) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    SCOPED_TRACE(octal);
    ASSERT_EQ(::chmod(data.c_str(), mode), 0);
    ASSERT_EQ(stat_of(data).st_mode & 07777, mode);
    LockManager manager;
    std::error_code ec;
    LockHandle h = pidlock::guard_data_directory(manager, data, {}, ec);
    EXPECT_EQ(ec, pidlock::errc::unsafe_data_directory) << ec.message();
    EXPECT_FALSE(h.held());
    try {
      LockHandle t = pidlock::guard_data_directory(manager, data);
      ADD_FAILURE() << "guarded a directory of mode " << octal;
    } catch (const pidlock::Error& e) {
      EXPECT_EQ(e.code(), pidlock::errc::unsafe_data_directory);
      EXPECT_EQ(e.path(), path);
      const std::string what = e.what();
      EXPECT_NE(what.find("\"" + path + "\""), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("its permissions are ") + octal), std::string::npos) << what;
      EXPECT_NE(what.find("chmod it"), std::string::npos) << what;
    }
    EXPECT_FALSE(exists(data + "/pidlock.pid"));
  }
}

// In `folder`, a forked process of uid 65534 (proved: it cannot go back to
// root) writes a file of its own and renames it over `lock`. Reports
// "renamed" or "rename: <strerror>".
std::string other_user_renames_over(const std::string& folder, const std::string& lock) {
  Child other = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    const std::string mine = folder + "/impostor";
    int fd = ::open(mine.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      write_string(report, std::string("create: ") + std::strerror(errno) + "\n");
      return 1;
    }
    (void)!::write(fd, "4242\n", 5);
    ::close(fd);
    if (::rename(mine.c_str(), lock.c_str()) != 0) {
      write_string(report, std::string("rename: ") + std::strerror(errno) + "\n");
      return 0;
    }
    write_string(report, "renamed\n");
    return 0;
  });
  std::string line = other.read_line().value_or("(no report)");
  EXPECT_EQ(exit_code(other.wait()), 0) << line;
  return line;
}

// A folder for the lock, of mode `mode`, that uid 65534 can reach.
std::string shared_folder(const TempDir& dir, mode_t mode) {
  EXPECT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // others may enter
  const std::string folder = dir / "shared";
  EXPECT_EQ(::mkdir(folder.c_str(), 0700), 0);
  EXPECT_EQ(::chmod(folder.c_str(), mode), 0);
  EXPECT_EQ(stat_of(folder).st_mode & 07777, mode);
  return folder;
}

// Plain acquire makes no check of its folder (guard_data_directory does):
// in a folder anyone may write to without the sticky bit it succeeds, and
// another user can then replace the lock file. The holder notices
// (recheck), and release removes nothing of the other user's (G5).
TEST(WorldWritableFolder, PlainAcquireSucceedsAndAnotherUserCanReplaceTheLock) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as a second user";
  TempDir dir;
  const std::string folder = shared_folder(dir, 0777);
  const std::string lock = folder + "/job.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.held());
  EXPECT_FALSE(handle.took_over());
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_EQ(stat_of(lock).st_mode & 07777, 0600u);
  EXPECT_TRUE(handle.recheck());

  EXPECT_EQ(other_user_renames_over(folder, lock), "renamed");
  EXPECT_FALSE(handle.recheck()) << "the holder can tell that the lock file is gone";
  EXPECT_EQ(handle.release(), pidlock::errc::lock_lost);
  EXPECT_EQ(read_file(lock), "4242\n") << "release removed the other user's file";
  EXPECT_EQ(stat_of(lock).st_uid, kNobody);
}

// The control: with the sticky bit (as /tmp has) only the owner may remove
// or replace the lock file.
TEST(WorldWritableFolder, WithTheStickyBitAnotherUserCannotReplaceTheLock) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as a second user";
  TempDir dir;
  const std::string folder = shared_folder(dir, 01777);
  const std::string lock = folder + "/job.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.held());
  EXPECT_EQ(other_user_renames_over(folder, lock), std::string("rename: ") + std::strerror(EPERM));
  EXPECT_TRUE(handle.recheck());
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_FALSE(handle.release());
  EXPECT_FALSE(exists(lock));
  EXPECT_TRUE(exists(folder + "/impostor")) << "the other user's file stays under its own name";
}

// --- a read-only file system ---

// The names in `folder`, sorted, space-separated.
std::string entries_of(const std::string& folder) {
  std::string out;
  for (const std::string& n : list_folder(folder)) out += (out.empty() ? "" : " ") + n;
  return out;
}

std::string error_name(const std::error_code& ec) {
  if (!ec) return "ok";
  if (ec == std::errc::read_only_file_system) return "EROFS";
  if (ec == std::errc::permission_denied) return "EACCES";
  return ec.message();
}

// A real read-only mount: a forked child enters a mount namespace of its
// own (so nothing leaks to this process or the machine), mounts a tmpfs,
// lets an exec'd holder acquire a lock there and SIGKILLs it (a stale
// pidlock record), remounts the tmpfs read-only and reports what pidlock
// does there. Needs CAP_SYS_ADMIN; skipped, saying so, without it.
TEST(ReadOnlyFileSystem, StaleLockIsInspectedButAcquireFailsWithErofsAndChangesNothing) {
  TempDir dir;
  const std::string mount_point = dir / "ro";
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  const std::string lock = mount_point + "/stale.pid";
  const std::string fresh = mount_point + "/fresh.pid";

  Child child = Child::fork([&](int report) -> int {
    auto say = [&](const std::string& line) { write_string(report, line + "\n"); };
    // "skip" only for EPERM before anything was mounted: no CAP_SYS_ADMIN
    // (an unprivileged container).
    auto failed = [&](const char* what, bool may_skip = true) {
      const int err = errno;
      say(std::string(may_skip && err == EPERM ? "skip " : "error ") + what + ": " + std::strerror(err));
      return 0;
    };
    if (::unshare(CLONE_NEWNS) != 0) return failed("unshare(CLONE_NEWNS)");
    // Private, so that the mounts below never propagate to the parent's
    // namespace (systemd makes "/" shared).
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return failed("make mounts private");
    if (::mount("pidlock-test", mount_point.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0)
      return failed("mount tmpfs");
    Child holder = Child::holder({"acquire", lock});
    const std::string ready = holder.read_line().value_or("(no report)");
    holder.kill();
    holder.wait();
    say("holder " + ready.substr(0, ready.rfind(' ')) + " killed");
    const std::string bytes = read_file(lock);
    struct stat before {};
    ::lstat(lock.c_str(), &before);

    if (::mount(nullptr, mount_point.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0)
      return failed("remount read-only", /*may_skip=*/false);
    const std::string probe = mount_point + "/probe";
    const bool read_only = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0 && errno == EROFS;
    say(read_only ? "read-only" : "still writable");

    LockManager manager;
    std::error_code ec;
    Inspection insp = manager.inspect(lock, {}, ec);
    say("inspect " + error_name(ec) + " " + describe(insp) + " " +
        (insp.holder ? std::to_string(insp.holder->pid) : std::string("-")));
    LockHandle handle = manager.acquire(lock, {}, ec);
    say("acquire " + error_name(ec) + (handle.held() ? " held" : ""));
    try {
      LockHandle thrown = manager.acquire(lock);
      say("acquire-what (acquired)");
    } catch (const pidlock::Error& e) {
      say(std::string("acquire-what ") + e.what());
    }
    LockHandle created = manager.acquire(fresh, {}, ec);
    say("acquire-fresh " + error_name(ec));
    pidlock::BreakResult broke = manager.break_stale(lock, {}, ec);
    say("break " + error_name(ec) + (broke.removed ? " removed" : ""));
    try {
      manager.break_stale(lock);
      say("break-what (no error)");
    } catch (const pidlock::Error& e) {
      say(std::string("break-what ") + e.what());
    }

    struct stat after {};
    ::lstat(lock.c_str(), &after);
    const bool same = read_file(lock) == bytes && after.st_ino == before.st_ino && after.st_size == before.st_size &&
                      after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                      after.st_mtim.tv_nsec == before.st_mtim.tv_nsec;
    say(same ? "unchanged" : "changed");
    say("entries " + entries_of(mount_point));
    return 0;
  });

  const std::string first = child.read_line().value_or("(no report)");
  if (first.rfind("skip ", 0) == 0) {
    child.wait();
    GTEST_SKIP() << "no CAP_SYS_ADMIN for a mount namespace here: " << first.substr(5);
  }
  ASSERT_EQ(first.rfind("holder ready ", 0), 0u) << first;
  const std::string holder_pid = first.substr(13, first.find(' ', 13) - 13);
  EXPECT_EQ(child.read_line(), std::optional<std::string>("read-only")) << "the remount must be read-only";
  EXPECT_EQ(child.read_line(),
            std::optional<std::string>("inspect ok " + describe(Verdict::kStale, Reason::kKernelLockFree) + " " +
                                       holder_pid));
  EXPECT_EQ(child.read_line(), std::optional<std::string>("acquire EROFS"));
  const std::string what = child.read_line().value_or("");
  // open(O_CREAT|O_EXCL) reports EEXIST before EROFS: the stale file is
  // judged, and its take-over is what the read-only mount refuses.
  EXPECT_EQ(what.rfind("acquire-what take over stale lock file \"" + lock + "\": ", 0), 0u) << what;
  EXPECT_NE(what.find(std::strerror(EROFS)), std::string::npos) << what;
  EXPECT_EQ(child.read_line(), std::optional<std::string>("acquire-fresh EROFS"));
  // break_stale names the real cause: the file system is read-only.
  EXPECT_EQ(child.read_line(), std::optional<std::string>("break EROFS"));
  const std::string break_what = child.read_line().value_or("");
  EXPECT_EQ(break_what.rfind("break-what break lock file \"" + lock + "\": ", 0), 0u) << break_what;
  EXPECT_EQ(child.read_line(), std::optional<std::string>("unchanged"));
  EXPECT_EQ(child.read_line(), std::optional<std::string>("entries stale.pid"))
      << "no temporary and no fresh.pid were left";
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_EQ(entries_of(mount_point), "") << "the mount stayed inside the child's namespace";
}

}  // namespace
