// Rule 4 (G2, G7): empty, zeroed and truncated files with no kernel lock
// held are taken over; garbage, binary and huge files are not lock records
// and are never taken over; all of them kernel-locked by a live
// process are held and never removed.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

struct BadFile {
  const char* name;
  pidlock::Verdict verdict;  // with no kernel lock held
  Reason expected;
  std::function<void(const std::string& path)> make;
};

std::string truncated_record() {
  pidlock::HolderRecord r;
  r.pid = 31337;
  r.data_directory = "/srv/db";
  r.start_time = 1795752900;
  r.boot_id = "3a94070e-1111-2222-3333-444455556666";
  r.host = "db1";
  r.status = "ready";
  std::string full = pidlock::format_record(r);
  return full.substr(0, full.size() / 2);  // cut in the middle of a field
}

// An empty file written a minute ago: older than any creator between its
// open(O_CREAT|O_EXCL) and its lock (a young one is "in creation", below).
void write_old_empty_file(const std::string& p) {
  write_file(p, "");
  age_file(p, 60);
}

// What a crash or a power loss can leave of a lock (empty, zeroed, a
// truncated pidlock record) is stale once no kernel lock is held; garbage
// and binary data are no lock record at all: unknown, and never
// taken over.
std::vector<BadFile> bad_files() {
  return {
      {"Empty", Verdict::kStale, Reason::kEmptyFile, write_old_empty_file},
      {"Garbage", Verdict::kUnknown, Reason::kNotALockRecord,
       [](const std::string& p) { write_file(p, "not a pid\n\x01\x02\xff garbage\n"); }},
      {"TruncatedPidlockRecord", Verdict::kStale, Reason::kUnparsable,
       [](const std::string& p) { write_file(p, truncated_record()); }},
      {"NulBytes", Verdict::kUnknown, Reason::kNotALockRecord,
       [](const std::string& p) { write_file(p, std::string("4242\n/srv/db\0\0\0\n1\n", 18)); }},
      {"AllNul", Verdict::kStale, Reason::kEmptyFile,
       [](const std::string& p) { write_file(p, std::string(4096, '\0')); }},
  };
}

void make_huge_file(const std::string& p) {
  write_file(p, "4242\n");
  ASSERT_EQ(::truncate(p.c_str(), off_t{64} << 20), 0);
}

class StaleFile : public ::testing::TestWithParam<size_t> {
 protected:
  BadFile bad() const { return bad_files()[GetParam()]; }
};

TEST_P(StaleFile, WithoutKernelLockOnlyALockRemnantIsTakenOver) {
  TempDir dir;
  const std::string lock = dir / "bad.pid";
  bad().make(lock);
  LockManager manager;
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, bad().verdict);
  EXPECT_EQ(insp.reason, bad().expected) << insp.detail;
  EXPECT_TRUE(exists(lock)) << "inspect never removes";

  const std::string bytes = read_file(lock);
  const std::int64_t t0 = monotonic_ms();
  std::error_code ec;
  LockHandle handle = manager.acquire(lock, {}, ec);
  EXPECT_LT(monotonic_ms() - t0, 2000) << "a bad file costs one bounded read";
  if (bad().verdict != Verdict::kStale) {
    EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
    EXPECT_FALSE(manager.break_stale(lock).removed);
    EXPECT_EQ(read_file(lock), bytes) << "what is not a lock record is never changed";
    return;
  }
  ASSERT_TRUE(handle.held()) << ec.message();
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder());
  EXPECT_EQ(handle.previous_holder()->reason, bad().expected);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  EXPECT_LT(st.st_size, 4096) << "the huge file was replaced by a record";
}

// The creation rule: an empty, unlocked file younger than a creator needs
// to lock it may be a creator's between its open(O_CREAT|O_EXCL) and its
// lock. inspect() says unknown (counts as held), break_stale() leaves it,
// and an acquire looks again for a moment, then takes it over by itself
// (a crashed creator's leftover needs nobody, G2).
TEST(YoungEmptyFile, IsInCreationForInspectAndBreakYetAcquireTakesItOver) {
  TempDir dir;
  const std::string lock = dir / "young.pid";
  write_file(lock, "");
  LockManager manager;
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kUnknown) << insp.detail;
  EXPECT_EQ(insp.reason, Reason::kEmptyFile) << insp.detail;
  EXPECT_NE(insp.detail.find("creating"), std::string::npos) << insp.detail;
  EXPECT_FALSE(manager.break_stale(lock).removed);
  EXPECT_TRUE(exists(lock));

  LockHandle handle = manager.acquire(lock);
  ASSERT_TRUE(handle.held());
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder());
  EXPECT_EQ(handle.previous_holder()->reason, Reason::kEmptyFile);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
}

// A file larger than any lock record cannot be a remnant of one: it may be
// somebody's data at a mistyped lock path, so it is "unknown" and left
// alone, never taken over (G7), and reading it costs one bounded read.
TEST(HugeFile, IsNeverTakenOverAndCostsOneBoundedRead) {
  TempDir dir;
  const std::string lock = dir / "huge.pid";
  make_huge_file(lock);
  LockManager manager;
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kUnknown);
  EXPECT_EQ(insp.reason, Reason::kNotALockRecord) << insp.detail;

  const std::int64_t t0 = monotonic_ms();
  std::error_code ec;
  pidlock::Inspection held;
  LockHandle handle = manager.acquire(lock, {}, ec, &held);
  EXPECT_LT(monotonic_ms() - t0, 2000) << "a huge file costs one bounded read";
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_FALSE(handle.held());
  EXPECT_EQ(held.verdict, Verdict::kUnknown);
  pidlock::BreakResult broke = manager.break_stale(lock);
  EXPECT_FALSE(broke.removed);
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t{64} << 20) << "the file is untouched";
}

TEST_P(StaleFile, KernelLockedByLiveProcessIsHeldAndNeverRemoved) {
  TempDir dir;
  const std::string lock = dir / "bad-locked.pid";
  bad().make(lock);
  struct stat before {};
  ASSERT_EQ(::stat(lock.c_str(), &before), 0);
  Child locker = Child::holder({"ofd-lock", lock});
  ASSERT_EQ(locker.read_line(), std::optional<std::string>("ready"));

  LockManager manager;
  pidlock::Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kHeld);
  EXPECT_EQ(insp.reason, Reason::kKernelLockHeld);

  std::error_code ec;
  pidlock::Inspection held;
  LockHandle handle = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_EQ(held.reason, Reason::kKernelLockHeld);
  pidlock::BreakResult broke = manager.break_stale(lock);
  EXPECT_FALSE(broke.removed);

  struct stat after {};
  ASSERT_EQ(::stat(lock.c_str(), &after), 0) << "a held file is never removed";
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_size, before.st_size);

  // Once the locker is gone the kernel lock is free again (whether the file
  // is then taken over is WithoutKernelLockIsTakenOver's business).
  locker.kill();
  locker.wait();
  EXPECT_FALSE(kernel_lock_held(lock));
}

INSTANTIATE_TEST_SUITE_P(Files, StaleFile, ::testing::Range<size_t>(0, 5),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(bad_files()[info.param].name);
                         });

TEST(StaleFile, BreakStaleRemovesOnlyStaleFiles) {
  TempDir dir;
  const std::string lock = dir / "break.pid";
  LockManager manager;
  pidlock::BreakResult none = manager.break_stale(lock);
  EXPECT_FALSE(none.removed);
  EXPECT_EQ(none.inspection.verdict, Verdict::kFree);

  write_file(lock, "");
  age_file(lock, 60);  // a young one may be in creation: see YoungEmptyFile
  pidlock::BreakResult broke = manager.break_stale(lock);
  EXPECT_TRUE(broke.removed);
  EXPECT_EQ(broke.inspection.reason, Reason::kEmptyFile);
  EXPECT_FALSE(exists(lock));
}

}  // namespace
