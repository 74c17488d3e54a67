// Injected faults through the OS seam (issue 5; STYLE.md point 7): every
// system call of acquire (fresh and take-over), update_status, release and
// inspect is failed in turn — the 1st call of that function, then the 2nd,
// and so on until the operation succeeds without reaching the fault — with
// ENOSPC, EIO, EINTR, EMFILE, ENFILE, EACCES, EROFS, with short and empty
// writes, and with "no kernel locks here" (ENOLCK/EOPNOTSUPP). Each fault
// must end in either
//  * a clear error: error_code set, the exception naming the operation and
//    the path; nothing held afterwards (a fresh process can acquire), nothing
//    left behind in the folder but, from a creator that failed before it
//    held its new file's lock, that empty file (which the next acquire
//    takes over), no descriptor leaked; or
//  * a correct result, as if nothing had happened (EINTR of a call that
//    POSIX lets a signal interrupt must be retried, never surface).
// And never a false verdict: a fault while judging a live holder must not
// make it stale or free, and must not let an acquire take it over.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <ctime>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::Verdict;

struct Fault {
  FaultKind kind;
  int err;
  std::string label;
};

std::vector<Fault> faults_for(Call c) {
  std::vector<Fault> out;
  for (int e : {ENOSPC, EIO, EINTR, EMFILE, ENFILE, EACCES, EROFS})
    out.push_back({FaultKind::kErrno, e, std::string(::strerrorname_np(e))});
  if (c == Call::kPwrite) {
    out.push_back({FaultKind::kShortWrite, 0, "short write"});
    out.push_back({FaultKind::kZeroWrite, 0, "write returns 0"});
  }
  if (c == Call::kTryLock || c == Call::kQueryLock) out.push_back({FaultKind::kUnsupported, 0, "no kernel locks"});
  if (c == Call::kKill) {
    out.push_back({FaultKind::kErrno, EINVAL, "EINVAL"});
    out.push_back({FaultKind::kErrno, EPERM, "EPERM"});
  }
  if (c == Call::kShmStat || c == Call::kConnectUnix) out.push_back({FaultKind::kErrno, EPERM, "EPERM"});
  return out;
}

// Calls that a signal can interrupt on Linux: EINTR there is a normal
// event the library must retry (close() excepted: it must not be retried,
// and its EINTR must not matter). EINTR of the others (fstat, link, unlink,
// fcntl(F_OFD_SETLK), ...) cannot happen on Linux; where it surfaces as an
// error the test prints a note instead of failing (fchmod: POSIX lists
// EINTR, Linux never returns it).
bool eintr_is_normal(Call c) {
  return c == Call::kOpenat || c == Call::kPread || c == Call::kPwrite || c == Call::kFsync || c == Call::kClose;
}

enum class Op {
  kAcquireFresh,
  kAcquireTakeOver,
  kAcquireLiveHolder,   // a live pidlock holder: must never be taken over
  kAcquireForeignLive,  // postmaster.pid naming a live process
  kAcquireForeignInUse, // postmaster.pid naming a dead pid, its data directory in use
  kUpdate,
  kRelease,
  kInspectHeld,
  kInspectForeignLive,
  kInspectForeignInUse,
  kInspectStale,
};

void PrintTo(Op op, std::ostream* os);  // defined below, for test names

// What one operation did.
struct Outcome {
  bool ok = false;            // succeeded
  bool held = false;          // acquire: LockHeldError / errc::held
  std::error_code ec;
  std::string operation;      // Error::operation()
  std::string what;           // Error::what()
  pidlock::Inspection inspection;  // inspect's verdict, or the holder's
  bool took_over = false;
  std::string record_bytes;   // the lock file after a successful acquire
};

class InjectedFault : public ::testing::TestWithParam<Op> {
 protected:
  FaultSystem fs_;
  std::vector<std::string> notes_;  // surfaced EINTRs of calls that cannot really return it
};

std::string describe(const Outcome& o) {
  if (o.ok) return "ok";
  if (o.held) return "held";
  return o.ec.message() + " (" + o.what + ")";
}

// `m` must outlive the handle: a LockManager releases its locks when it
// is destroyed.
Outcome do_acquire(FaultSystem& fs, pidlock::LockManager& m, const std::string& path, Call c, int n,
                   const Fault& f, pidlock::LockHandle* keep) {
  Outcome o;
  pidlock::AcquireOptions opts;  // durable: the fsyncs are faulted too
  fs.arm(c, n, f.kind, f.err);
  try {
    pidlock::LockHandle h = m.acquire(path, opts);
    fs.disarm();
    o.ok = true;
    o.took_over = h.took_over();
    o.record_bytes = read_file(path);
    *keep = std::move(h);
  } catch (const pidlock::LockHeldError& e) {
    fs.disarm();
    o.held = true;
    o.ec = e.code();
    o.inspection = e.holder();
  } catch (const pidlock::Error& e) {
    fs.disarm();
    o.ec = e.code();
    o.operation = e.operation();
    o.what = e.what();
  }
  return o;
}

Outcome do_inspect(FaultSystem& fs, const std::string& path, Call c, int n, const Fault& f) {
  Outcome o;
  pidlock::LockManager m;
  fs.arm(c, n, f.kind, f.err);
  try {
    o.inspection = m.inspect(path);
    o.ok = true;
  } catch (const pidlock::Error& e) {
    o.ec = e.code();
    o.operation = e.operation();
    o.what = e.what();
  }
  fs.disarm();
  return o;
}

void expect_clear_error(const Outcome& o, const std::string& path, const std::string& where) {
  EXPECT_TRUE(o.ec) << where;
  EXPECT_FALSE(o.operation.empty()) << where << ": the error names no operation: " << o.what;
  EXPECT_NE(o.what.find(path), std::string::npos) << where << ": the message names no path: " << o.what;
}

void check_no_false_verdict(const Outcome& o, const std::string& where) {
  if (!o.ok) return;
  EXPECT_TRUE(o.inspection.verdict == Verdict::kHeld || o.inspection.verdict == Verdict::kUnknown)
      << where << ": a live holder was judged " << pidlock::to_string(o.inspection.verdict) << " ("
      << pidlock::to_string(o.inspection.reason) << ": " << o.inspection.detail << ")";
}

TEST_P(InjectedFault, EveryCallEveryFault) {
  const Op op = GetParam();
  ScopedSystem scoped(&fs_);
  int runs = 0, hits = 0;

  // Live holders are set up once: a correct library never disturbs them.
  std::unique_ptr<TempDir> live_dir;
  std::unique_ptr<HeldInChild> holder;
  Child sleeper;
  std::string live_lock, live_bytes;
  if (op == Op::kAcquireLiveHolder || op == Op::kInspectHeld) {
    live_dir = std::make_unique<TempDir>();
    live_lock = *live_dir / "lock";
    holder = std::make_unique<HeldInChild>(live_lock);
    ASSERT_TRUE(holder->ok());
    live_bytes = read_file(live_lock);
  }
  if (op == Op::kAcquireForeignLive || op == Op::kInspectForeignLive) {
    live_dir = std::make_unique<TempDir>();
    live_lock = *live_dir / "postmaster.pid";
    sleeper = Child::sleeper();
    live_bytes = postmaster_pid(sleeper.pid(), live_dir->path(), now());
    write_file(live_lock, live_bytes);
  }
  if (op == Op::kAcquireForeignInUse || op == Op::kInspectForeignInUse) {
    // The recorded pid is dead; the only sign of life is the last one
    // looked for (a process working in the data directory), so that every
    // probe before it -- flock, shared memory (an id that does not exist),
    // the socket (a folder without it) -- is reached and can be failed.
    live_dir = std::make_unique<TempDir>();
    live_lock = *live_dir / "postmaster.pid";
    sleeper = Child::sleeper(live_dir->path());
    const pid_t dead = dead_pid();
    live_bytes = std::to_string(dead) + "\n" + live_dir->path() + "\n" + std::to_string(now()) +
                 "\n5433\n" + live_dir->path() + "\n\n  5433001  2147483000\nready   \n";
    write_file(live_lock, live_bytes);
  }

  for (int ci = 0; ci < static_cast<int>(Call::kCount); ++ci) {
    const Call call = static_cast<Call>(ci);
    for (const Fault& fault : faults_for(call)) {
      for (int n = 1; n <= 60; ++n) {
        const std::string where = std::string(call_name(call)) + " #" + std::to_string(n) + " fails with " + fault.label;
        SCOPED_TRACE(where);
        ++runs;
        const int fds_before = open_fd_count();
        bool hit = false;
        Outcome o;
        switch (op) {
          case Op::kAcquireFresh:
          case Op::kAcquireTakeOver: {
            TempDir dir;
            const std::string lock = dir / "lock";
            std::string stale;
            if (op == Op::kAcquireTakeOver) {
              ScopedSystem real(nullptr);
              ASSERT_GT(leave_stale_lock(lock), 0);
              stale = read_file(lock);
            }
            pidlock::LockManager m;
            pidlock::LockHandle h;
            o = do_acquire(fs_, m, lock, call, n, fault, &h);
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            if (o.ok) {
              pidlock::ParsedRecord parsed = pidlock::parse_record(o.record_bytes);
              ASSERT_TRUE(parsed.record) << parsed.problem;
              EXPECT_EQ(parsed.record->pid, ::getpid());
              EXPECT_EQ(o.took_over, op == Op::kAcquireTakeOver);
              std::error_code rec = h.release();
              EXPECT_FALSE(rec) << rec.message();
              EXPECT_TRUE(dir.entries().empty());
            } else {
              EXPECT_FALSE(o.held) << "a free or stale lock was reported held: " << o.inspection.detail;
              expect_clear_error(o, lock, where);
              // Nothing left behind but, at most, the untouched stale file.
              for (const std::string& name : dir.entries()) {
                EXPECT_EQ(name, "lock") << "left behind: " << name;
                if (name == "lock" && op == Op::kAcquireFresh) {
                  // Failing between its open(O_CREAT|O_EXCL) and its lock
                  // (or the stat that tells it which inode it locked), a
                  // creator cannot prove the file its own and leaves it:
                  // empty, unlocked -- "in creation" while young, then
                  // stale; the acquire below takes it over by itself.
                  EXPECT_EQ(read_file(lock), "") << "a failed fresh acquire left a non-empty lock file";
                  notes_.push_back("a fresh acquire failing at " + std::string(call_name(call)) +
                                   " leaves an empty file, which the next acquire takes over");
                } else if (name == "lock") {
                  // A take-over rewrites the stale file in place; failing
                  // after the write leaves our record there, unlocked:
                  // still a stale file, never a held one.
                  const std::string now = read_file(lock);
                  if (now != stale) {
                    pidlock::ParsedRecord parsed = pidlock::parse_record(now);
                    EXPECT_TRUE(parsed.record || parsed.torn) << "a failed take-over left garbage: " << parsed.problem;
                    EXPECT_EQ(inspect_in_child(lock), static_cast<int>(Verdict::kStale));
                    notes_.push_back("a failed take-over (" + std::string(call_name(call)) +
                                     ") leaves the stale file rewritten with our record");
                  }
                }
              }
              // No lock held: another process can take it right away.
              const bool left = exists(lock);
              bool took_over = false;
              EXPECT_EQ(acquire_in_child(lock, &took_over), "");
              EXPECT_EQ(took_over, left);
              EXPECT_TRUE(dir.entries().empty());
            }
            break;
          }
          case Op::kAcquireLiveHolder:
          case Op::kAcquireForeignLive:
          case Op::kAcquireForeignInUse: {
            pidlock::LockManager m;
            pidlock::LockHandle h;
            o = do_acquire(fs_, m, live_lock, call, n, fault, &h);
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            EXPECT_FALSE(o.ok) << "took over the lock of a live holder";
            if (o.ok) (void)h.release();
            if (!o.held) expect_clear_error(o, live_lock, where);
            if (o.held) {
              Outcome judged;
              judged.ok = true;
              judged.inspection = o.inspection;
              check_no_false_verdict(judged, where);
            }
            ASSERT_EQ(read_file(live_lock), live_bytes) << "the live holder's file was changed or removed";
            break;
          }
          case Op::kUpdate: {
            TempDir dir;
            const std::string lock = dir / "lock";
            pidlock::LockManager m;
            pidlock::LockHandle h;
            {
              ScopedSystem real(nullptr);
              h = m.acquire(lock);
            }
            fs_.arm(call, n, fault.kind, fault.err);
            std::string message;
            try {
              h.update_status("ready");
              o.ok = true;
            } catch (const pidlock::Error& e) {
              o.ec = e.code();
              o.operation = e.operation();
              o.what = e.what();
            }
            fs_.disarm();
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            if (o.ok) {
              pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
              ASSERT_TRUE(parsed.record) << parsed.problem;
              EXPECT_EQ(parsed.record->status, "ready");
            } else {
              expect_clear_error(o, lock, where);
              // Still ours, still held: readers go by the kernel lock even
              // if the record was left torn.
              EXPECT_TRUE(h.held());
              EXPECT_EQ(inspect_in_child(lock), static_cast<int>(Verdict::kHeld));
            }
            EXPECT_FALSE(h.release());
            EXPECT_TRUE(dir.entries().empty());
            break;
          }
          case Op::kRelease: {
            TempDir dir;
            const std::string lock = dir / "lock";
            pidlock::LockManager m;
            pidlock::LockHandle h;
            {
              ScopedSystem real(nullptr);
              h = m.acquire(lock);
            }
            fs_.arm(call, n, fault.kind, fault.err);
            o.ec = h.release();
            o.ok = !o.ec;
            fs_.disarm();
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            EXPECT_FALSE(h.held());
            if (o.ok) {
              EXPECT_TRUE(dir.entries().empty());
            } else {
              // Whatever is left must not need a person.
              bool took_over = false;
              EXPECT_EQ(acquire_in_child(lock, &took_over), "");
              EXPECT_TRUE(dir.entries().empty());
            }
            break;
          }
          case Op::kInspectHeld:
          case Op::kInspectForeignLive:
          case Op::kInspectForeignInUse: {
            o = do_inspect(fs_, live_lock, call, n, fault);
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            if (!o.ok) expect_clear_error(o, live_lock, where);
            check_no_false_verdict(o, where);
            ASSERT_EQ(read_file(live_lock), live_bytes);
            break;
          }
          case Op::kInspectStale: {
            TempDir dir;
            const std::string lock = dir / "lock";
            {
              ScopedSystem real(nullptr);
              ASSERT_GT(leave_stale_lock(lock), 0);
            }
            o = do_inspect(fs_, lock, call, n, fault);
            hit = fs_.hit();
            ScopedSystem real(nullptr);
            if (!o.ok) expect_clear_error(o, lock, where);
            if (o.ok) {
              EXPECT_NE(o.inspection.verdict, Verdict::kFree);
            }
            EXPECT_TRUE(exists(lock)) << "inspect removed the file";
            break;
          }
        }
        EXPECT_EQ(open_fd_count(), fds_before) << "descriptor leak after " << describe(o);
        if (hit) ++hits;
        if (hit && fault.kind == FaultKind::kErrno && fault.err == EINTR) {
          bool surfaced = !o.ok && o.ec == std::error_code(EINTR, std::system_category());
          if (eintr_is_normal(call)) {
            EXPECT_FALSE(surfaced) << "EINTR of " << call_name(call) << " surfaced instead of being retried";
          } else if (surfaced) {
            notes_.push_back(std::string("EINTR of ") + call_name(call) + " surfaces (call #" + std::to_string(n) + ")");
          }
        }
        if (hit && fault.kind == FaultKind::kShortWrite) {
          EXPECT_TRUE(o.ok || o.held) << "a short write is not an error: " << describe(o);
        }
        if (::testing::Test::HasFatalFailure()) return;
        if (!hit) break;  // the operation never reached the n-th call
      }
    }
  }
  std::vector<std::string> unique;
  for (const std::string& note : notes_)
    if (std::find(unique.begin(), unique.end(), note) == unique.end()) unique.push_back(note);
  for (const std::string& note : unique) std::printf("note: %s\n", note.c_str());
  std::printf("%d runs, %d with the fault hit\n", runs, hits);
  EXPECT_GT(hits, 0);
}

std::string op_name(const ::testing::TestParamInfo<Op>& info) {
  switch (info.param) {
    case Op::kAcquireFresh: return "AcquireFresh";
    case Op::kAcquireTakeOver: return "AcquireTakeOver";
    case Op::kAcquireLiveHolder: return "AcquireLiveHolder";
    case Op::kAcquireForeignLive: return "AcquireForeignLive";
    case Op::kAcquireForeignInUse: return "AcquireForeignInUse";
    case Op::kUpdate: return "UpdateStatus";
    case Op::kRelease: return "Release";
    case Op::kInspectHeld: return "InspectHeld";
    case Op::kInspectForeignLive: return "InspectForeignLive";
    case Op::kInspectForeignInUse: return "InspectForeignInUse";
    case Op::kInspectStale: return "InspectStale";
  }
  return "Unknown";
}

void PrintTo(Op op, std::ostream* os) { *os << op_name(::testing::TestParamInfo<Op>(op, 0)); }

INSTANTIATE_TEST_SUITE_P(Seam, InjectedFault,
                         ::testing::Values(Op::kAcquireFresh, Op::kAcquireTakeOver, Op::kAcquireLiveHolder,
                                           Op::kAcquireForeignLive, Op::kAcquireForeignInUse, Op::kUpdate,
                                           Op::kRelease, Op::kInspectHeld, Op::kInspectForeignLive,
                                           Op::kInspectForeignInUse, Op::kInspectStale),
                         op_name);

// Regression (found by EveryCallEveryFault, fixed in lib/): after link()
// published the lock file, acquire checks with fstatat() that the path
// still names it. That fstatat() failing (EIO, ...) used to be taken for
// "the file was replaced": acquire reported errc::lock_lost instead of the
// real error and left its own lock file behind, unlocked.
TEST(InjectedFaultRegression, FailedStatAfterLinkLeavesNothingBehind) {
  TempDir dir;
  const std::string lock = dir / "lock";
  FaultSystem fs;
  pidlock::LockManager m;
  std::error_code ec;
  pidlock::LockHandle h;
  {
    ScopedSystem scoped(&fs);
    fs.arm(Call::kFstatat, 1, FaultKind::kErrno, EIO);
    h = m.acquire(lock, {}, ec);
    fs.disarm();
    ASSERT_TRUE(fs.hit());
  }
  if (h) return;  // succeeded despite the fault: fine
  EXPECT_EQ(ec, std::error_code(EIO, std::system_category())) << ec.message();
  EXPECT_TRUE(dir.entries().empty()) << "the failed acquire left its lock file behind";
}

// Regression (G1, G3; found here, fixed in lib/): a kernel lock that is
// transiently unavailable at creation (ENOLCK: the lock table is full, as
// NFS's lockd can report) made prepare() publish a pidlock record without
// its kernel lock, and every other process then took the free kernel lock
// of a pidlock record as proof that the holder was gone
// (Reason::kKernelLockFree) and took over the live holder.
TEST(InjectedFaultRegression, TransientNoLockAtCreationMustNotExposeLiveHolder) {
  TempDir dir;
  const std::string lock = dir / "lock";
  Pipe done;
  Child child = Child::fork([&](int report) -> int {
    done.close_write();
    static FaultSystem* fs = new FaultSystem();
    d::set_system(fs);
    fs->arm(Call::kTryLock, 1, FaultKind::kUnsupported, 0);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::LockHandle h = m.acquire(lock, {}, ec);
    fs->disarm();
    write_byte(report, h ? '1' : '0');
    wait_for_eof(done.read_end());
    return 0;
  });
  done.close_read();
  std::optional<char> c = read_byte(child.report_fd());
  ASSERT_TRUE(c);
  if (*c == '1') {
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::Inspection holder;
    pidlock::LockHandle h = m.acquire(lock, {}, ec, &holder);
    EXPECT_FALSE(h) << "took over the lock of live pid " << child.pid();
    EXPECT_EQ(ec, pidlock::errc::held);
  }
  done.close_write();
  child.wait();
}

}  // namespace
