// Recognition: every recognised layout x {live pid, dead pid,
// our own pid, another host}, each judged by its own rules, and files that
// are not lock records (text, binary, whitespace only, huge, numbers no pid
// can be) never modified by inspect, acquire, break_stale, `pidlock run` or
// `pidlock break`: bytes, inode, size, mode, owner, group, mtime and ctime
// are compared before and after every operation.
#include <pidlock/pidlock.hpp>

#include "core/judge.hpp"
#include "recognise/recognise_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace pidlock_recognise {
namespace {

using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

// --- the recognised layouts ---

// Who a cell's record names.
struct Named {
  pid_t pid = 0;
  std::uint64_t ticks = 0;  // its start, clock ticks since boot
  std::int64_t start = 0;   // its start, epoch seconds
  std::string host;         // this host, or another
  std::string comm;         // its command name
};

enum class Holder { kLive, kDead, kOwn, kOtherHost };

struct Layout {
  const char* name;
  pidlock::RecordFormat format;
  bool has_host;  // a host line: the "another host" cell applies
  std::function<std::string(const Named&)> bytes;
  // The verdict where it differs from the rule (live: held pid-alive;
  // dead: stale pid-dead; own: unknown own-pid-unproven; other host:
  // unknown other-host).
  std::function<std::optional<std::string>(Holder)> exception = [](Holder) { return std::nullopt; };
};

std::string pg8(const Named& n, long pid) {
  return std::to_string(pid) + "\n/srv/pg/data\n" + std::to_string(n.start) +
         "\n5433\n/nonexistent-socket-dir\n*\n  5433001    393216\nready   \n";
}

std::string padded(pid_t pid) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%10d\n", static_cast<int>(pid));
  return buf;
}

std::string pidlock_without_kernel_lock(const Named& n) {
  pidlock::HolderRecord r;
  r.pid = n.pid;
  r.data_directory = "/srv/db";
  r.start_time = n.start;
  r.process_start_ticks = n.ticks;
  r.boot_id = boot_id();
  r.pid_namespace = pid_namespace_inode("/proc/self/ns/pid");
  r.host = n.host;
  r.status = "ready";
  r.without_kernel_lock = true;
  return pidlock::format_record(r);
}

std::vector<Layout> layouts() {
  using F = pidlock::RecordFormat;
  return {
      {"PidAlone", F::kPlainPid, false, [](const Named& n) { return std::to_string(n.pid) + "\n"; }},
      {"PidWithoutNewline", F::kPlainPid, false, [](const Named& n) { return std::to_string(n.pid); }},
      {"PidPadded10X11Uucp", F::kPlainPid, false, [](const Named& n) { return padded(n.pid); }},
      {"PidThenBlankLines", F::kPlainPid, false, [](const Named& n) { return std::to_string(n.pid) + "\n\n \n"; }},
      {"PidCrlf", F::kPlainPid, false, [](const Named& n) { return std::to_string(n.pid) + "\r\n"; }},
      {"PidThenHost", F::kPlainPid, true, [](const Named& n) { return std::to_string(n.pid) + "\n" + n.host + "\n"; }},
      {"PidThenProgramPath", F::kPlainPid, false,
       [](const Named& n) { return std::to_string(n.pid) + "\n/usr/bin/" + n.comm + "\n"; }},
      // A bare name that is not the program the pid runs may be a host:
      // with the pid dead here, nothing tells, so the lock is unknown.
      {"PidThenProgramName", F::kPlainPid, false,
       [](const Named& n) { return std::to_string(n.pid) + "\n" + n.comm + "\n"; },
       [](Holder h) -> std::optional<std::string> {
         if (h == Holder::kDead) return describe(Verdict::kUnknown, Reason::kOtherHost);
         return std::nullopt;
       }},
      {"PostmasterPid", F::kPostgresql, false, [](const Named& n) { return pg8(n, n.pid); }},
      {"PostmasterPidWhileStarting", F::kPostgresql, false,
       [](const Named& n) {
         return std::to_string(n.pid) + "\n/srv/pg/data\n" + std::to_string(n.start) + "\n5433\n\n";
       }},
      {"PostmasterPidSingleUser", F::kPostgresql, false, [](const Named& n) { return pg8(n, -n.pid); }},
      {"PostgresqlSocketLock", F::kPostgresql, false,
       [](const Named& n) {
         return std::to_string(n.pid) + "\n/srv/pg/data\n" + std::to_string(n.start) + "\n5433\n/nonexistent\n";
       }},
      {"PythonFilelockMarker", F::kFilelock, true,
       [](const Named& n) { return std::to_string(n.pid) + "\n" + n.host + "\n" + std::to_string(n.ticks) + "\n"; }},
      {"PythonFilelockMarkerV2", F::kFilelock, true,
       [](const Named& n) {
         return "filelock/2\npid=" + std::to_string(n.pid) + "\nhost=" + n.host + "\nmode=exclusive\nstart=" +
                std::to_string(n.ticks) + "\n";
       }},
      {"PidlockRecordWithoutKernelLock", F::kPidlock, true, pidlock_without_kernel_lock},
  };
}

const char* name_of(Holder h) {
  switch (h) {
    case Holder::kLive: return "LivePid";
    case Holder::kDead: return "DeadPid";
    case Holder::kOwn: return "OwnPid";
    case Holder::kOtherHost: return "OtherHost";
  }
  return "?";
}

std::string expected_for(const Layout& layout, Holder h) {
  if (std::optional<std::string> e = layout.exception(h)) return *e;
  switch (h) {
    case Holder::kLive: return describe(Verdict::kHeld, Reason::kPidAlive);
    case Holder::kDead: return describe(Verdict::kStale, Reason::kPidDead);
    case Holder::kOwn: return describe(Verdict::kUnknown, Reason::kOwnProcessUnproven);
    case Holder::kOtherHost: return describe(Verdict::kUnknown, Reason::kOtherHost);
  }
  return "?";
}

std::string comm_of(pid_t pid) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
  if (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// Every cell that applies: layouts without a host line have no "another
// host" cell.
std::vector<std::tuple<size_t, Holder>> cells() {
  std::vector<std::tuple<size_t, Holder>> out;
  const std::vector<Layout> all = layouts();
  for (size_t i = 0; i < all.size(); ++i)
    for (Holder h : {Holder::kLive, Holder::kDead, Holder::kOwn, Holder::kOtherHost})
      if (h != Holder::kOtherHost || all[i].has_host) out.emplace_back(i, h);
  return out;
}

class LayoutTable : public ::testing::TestWithParam<std::tuple<size_t, Holder>> {
 protected:
  Layout layout() const { return layouts()[std::get<0>(GetParam())]; }
  Holder holder() const { return std::get<1>(GetParam()); }
};

TEST_P(LayoutTable, IsJudgedByItsOwnRulesAndOnlyAStaleOneIsTakenOver) {
  const Layout l = layout();
  // The live holder: a child sleeping, forked before the file exists (so
  // that it has no descriptor of it).
  Child live = Child::fork([](int) -> int {
    for (;;) ::pause();
  });
  Named n;
  n.host = hostname();
  n.comm = comm_of(live.pid());
  switch (holder()) {
    case Holder::kLive:
    case Holder::kOtherHost:
      n.pid = live.pid();
      n.ticks = proc_start_ticks(n.pid);
      n.start = proc_start_epoch(n.pid);
      if (holder() == Holder::kOtherHost) n.host = hostname() + "-elsewhere";
      break;
    case Holder::kDead:
      n.pid = dead_pid();
      n.ticks = 12345;
      n.start = now();
      break;
    case Holder::kOwn:
      n.pid = ::getpid();
      n.ticks = proc_start_ticks(n.pid);
      n.start = proc_start_epoch(n.pid);
      break;
  }
  TempDir dir;
  const std::string lock = dir / "layout.lock";
  const std::string bytes = l.bytes(n);
  write_file(lock, bytes, 0644);
  SCOPED_TRACE(l.name + std::string(" naming ") + name_of(holder()) + ": " + bytes);

  LockManager manager;
  Inspection insp = manager.inspect(lock);
  const std::string expected = expected_for(l, holder());
  EXPECT_EQ(describe(insp), expected) << insp.detail;
  ASSERT_TRUE(insp.holder) << "a recognised layout has a record";
  EXPECT_EQ(insp.holder->format, l.format);
  EXPECT_EQ(insp.holder->pid, n.pid);
  EXPECT_FALSE(insp.detail.empty());

  const FileFacts before = facts_of(lock);
  std::error_code ec;
  Inspection held;
  LockHandle handle = manager.acquire(lock, {}, ec, &held);
  if (insp.verdict == Verdict::kStale) {
    ASSERT_FALSE(ec) << ec.message() << " " << held.detail;
    EXPECT_TRUE(handle.took_over());
    ASSERT_TRUE(handle.previous_holder());
    EXPECT_EQ(describe(*handle.previous_holder()), expected);
    EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
    EXPECT_FALSE(handle.release());
    EXPECT_FALSE(exists(lock));
  } else {
    EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
    EXPECT_EQ(describe(held), expected) << held.detail;
    pidlock::BreakResult broke = manager.break_stale(lock);
    EXPECT_FALSE(broke.removed);
    expect_unchanged(before, facts_of(lock), "a held or unknown lock after acquire and break_stale");
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, LayoutTable, ::testing::ValuesIn(cells()),
                         [](const ::testing::TestParamInfo<std::tuple<size_t, Holder>>& info) {
                           return std::string(layouts()[std::get<0>(info.param)].name) + "_" +
                                  name_of(std::get<1>(info.param));
                         });

// A filelock marker whose start token is not that of the process now
// running as its pid: a reused pid, proven without any clock.
TEST(LayoutTable, FilelockMarkerWithAnotherStartTokenIsAReusedPid) {
  Child live = Child::fork([](int) -> int {
    for (;;) ::pause();
  });
  TempDir dir;
  const std::string lock = dir / "marker.lock";
  write_file(lock, std::to_string(live.pid()) + "\n" + hostname() + "\n" +
                       std::to_string(proc_start_ticks(live.pid()) + 1) + "\n");
  Inspection insp = LockManager().inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidReused)) << insp.detail;
  EXPECT_EQ(::kill(live.pid(), 0), 0) << "judging never signals the process";
}

// --- files with no holder: empty, zeroed ---

TEST(LayoutTable, EmptyAndZeroedFilesAreStaleAndTakenOver) {
  for (const std::string& bytes : {std::string(), std::string(37, '\0')}) {
    SCOPED_TRACE(bytes.empty() ? "empty" : "37 NUL bytes");
    TempDir dir;
    const std::string lock = dir / "empty.lock";
    write_file(lock, bytes);
    age_file(lock, 60);  // a young empty one may be in creation (stale_file_test.cpp)
    LockManager manager;
    Inspection insp = manager.inspect(lock);
    EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kEmptyFile)) << insp.detail;
    EXPECT_FALSE(insp.holder);
    LockHandle h = manager.acquire(lock);
    EXPECT_TRUE(h.took_over());
    EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  }
}

// --- files that are not lock records ---

struct NotALock {
  const char* name;
  std::string bytes;
  const char* found;  // part of the detail: what was found
};

std::vector<NotALock> not_locks() {
  std::string binary = "\x7f" "ELF\x02\x01\x01\x03";
  for (int i = 1; i < 200; ++i) binary += static_cast<char>((i * 37) % 255 + 1);
  return {
      {"Text", "hello, world\nthis is not a lock\n", "2 lines of text, the first \"hello, world\""},
      {"TextAfterAPid", "4242\nnotes about process 4242\n", "2 lines of text"},
      {"Binary", binary, "binary data (207 bytes)"},
      {"BinaryWithNul", std::string("4242\n\0\0\0junk", 13), "binary data (13 bytes)"},
      {"WhitespaceOnly", " \n\t \n\n", "whitespace only"},
      {"ATimestamp", "1795752900\n", "a number no process can have"},
      {"NegativeNothing", "-\n", "line 1 is not a pid"},
      {"Csv", "4242,1795752900\n", "line 1 is not a pid"},
      {"Json", "{\"pid\": 4242}\n", "line 1 is not a pid"},
      {"Huge", "4242\n" + std::string(5000, ' ') + "\n", "larger than 4096 bytes"},
      {"HugeText", std::string(9000, 'x'), "larger than 4096 bytes"},
  };
}

class NotALockRecord : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    nl_ = not_locks()[GetParam()];
    write_file(lock_, nl_.bytes, 0640);
    // Another user's file, so that a chown or chmod would show.
    ASSERT_EQ(::chown(lock_.c_str(), kNobody, kNobody), 0);
    before_ = facts_of(lock_);
  }
  NotALock nl_;
  TempDir dir_;
  const std::string lock_ = dir_ / "mistyped.lock";
  FileFacts before_;
};

TEST_P(NotALockRecord, IsUnknownSaysWhatWasFoundAndIsNeverChanged) {
  for (bool kernel_locks : {true, false}) {
    SCOPED_TRACE(kernel_locks ? "kernel locks" : "no kernel locks");
    NoKernelLocksSystem no_locks;
    std::optional<ScopedSystem> scope;
    if (!kernel_locks) scope.emplace(&no_locks);
    LockManager manager;

    Inspection insp = manager.inspect(lock_);
    EXPECT_EQ(describe(insp), describe(Verdict::kUnknown, Reason::kNotALockRecord)) << insp.detail;
    EXPECT_NE(insp.detail.find(nl_.found), std::string::npos) << insp.detail;
    EXPECT_NE(insp.detail.find("a person must remove it"), std::string::npos) << insp.detail;
    EXPECT_FALSE(insp.holder);
    expect_unchanged(before_, facts_of(lock_), "inspect");

    std::error_code ec;
    Inspection held;
    LockHandle handle = manager.acquire(lock_, {}, ec, &held);
    EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
    EXPECT_EQ(held.reason, Reason::kNotALockRecord);
    expect_unchanged(before_, facts_of(lock_), "acquire");

    try {
      LockHandle thrown = manager.acquire(lock_);
      ADD_FAILURE() << "acquired a file that is not a lock record";
    } catch (const pidlock::LockHeldError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(lock_), std::string::npos) << what;
      EXPECT_NE(what.find("not a lock record"), std::string::npos) << what;
    }
    expect_unchanged(before_, facts_of(lock_), "throwing acquire");

    pidlock::BreakResult broke = manager.break_stale(lock_, {}, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_FALSE(broke.removed);
    EXPECT_EQ(broke.inspection.reason, Reason::kNotALockRecord);
    expect_unchanged(before_, facts_of(lock_), "break_stale");

    pidlock::AcquireOptions waits;
    waits.timeout = std::chrono::milliseconds(50);
    handle = manager.acquire(lock_, waits, ec, &held);
    EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
    expect_unchanged(before_, facts_of(lock_), "waiting acquire");
  }
}

TEST_P(NotALockRecord, PidlockRunAndBreakRefuseItAndChangeNothing) {
  if (!have_cli()) GTEST_SKIP() << "this build has no pidlock program (PIDLOCK_BUILD_TOOLS=OFF)";
  const std::string marker = dir_ / "command-ran";
  Ran run = run_cli({"run", lock_, "--", "touch", marker});
  EXPECT_EQ(run.code, 75) << run.output;
  EXPECT_NE(run.output.find("not a lock record"), std::string::npos) << run.output;
  EXPECT_FALSE(exists(marker)) << "the command must not run";
  expect_unchanged(before_, facts_of(lock_), "pidlock run");

  Ran broke = run_cli({"break", lock_});
  EXPECT_EQ(broke.code, 75) << broke.output;
  EXPECT_NE(broke.output.find("a person must remove it"), std::string::npos) << broke.output;
  expect_unchanged(before_, facts_of(lock_), "pidlock break");

  Ran status = run_cli({"status", "--json", lock_});
  EXPECT_EQ(status.code, 4) << status.output;
  EXPECT_NE(status.output.find("\"reason\":\"not-a-lock-record\""), std::string::npos) << status.output;
  expect_unchanged(before_, facts_of(lock_), "pidlock status");
}

INSTANTIATE_TEST_SUITE_P(Files, NotALockRecord, ::testing::Range<size_t>(0, not_locks().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(not_locks()[info.param].name);
                         });

// A file as large as a gibibyte costs one bounded read and stays as it was.
TEST(NotALockRecord, SparseGibibyteIsNeverChanged) {
  TempDir dir;
  const std::string lock = dir / "huge.lock";
  write_file(lock, "4242\n", 0600);
  ASSERT_EQ(::truncate(lock.c_str(), off_t{1} << 30), 0);
  const FileFacts before = facts_of(lock);
  LockManager manager;
  EXPECT_EQ(manager.inspect(lock).reason, Reason::kNotALockRecord);
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_FALSE(manager.break_stale(lock).removed);
  expect_unchanged(before, facts_of(lock), "1 GiB file");
}

}  // namespace
}  // namespace pidlock_recognise
