// Rule 15: update_status rewrites the record in place while readers read
// it; no reader ever accepts a torn record, sees a status nobody wrote, or
// sees the file shrink.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

namespace {

using namespace pidlock_test;
using pidlock::AcquireOptions;
using pidlock::LockHandle;
using pidlock::LockManager;

const char* const kWords[] = {"starting", "ready", "stopping", "x", "standby-with-a-long-name"};

bool written_word(const std::string& s) {
  for (const char* w : kWords)
    if (s == w) return true;
  return false;
}

TEST(UpdateStatus, ConcurrentReaderNeverSeesATornRecordOrAShrinkingFile) {
  TempDir dir;
  const std::string lock = dir / "status.pid";
  AcquireOptions options;
  options.durable = false;  // thousands of updates; fsync is not what is tested
  LockManager manager;
  LockHandle handle = manager.acquire(lock, options);
  Pipe stop;
  Child reader = Child::fork([&](int report) -> int {
    stop.close_write();
    LockManager m;
    int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 3;
    long reads = 0, torn = 0, untorn_failures = 0, bad_status = 0, shrank = 0;
    long inspections = 0, inspect_without_record = 0, inspect_not_held = 0;
    std::string last_bad;
    off_t last_size = 0;
    char buf[8192];
    for (;;) {
      struct pollfd p {stop.read_end(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) break;
      struct stat st {};
      ::fstat(fd, &st);
      if (st.st_size < last_size) ++shrank;
      last_size = st.st_size;
      ssize_t n = ::pread(fd, buf, sizeof buf, 0);
      if (n >= 0) {
        ++reads;
        pidlock::ParsedRecord parsed = pidlock::parse_record(std::string_view(buf, static_cast<size_t>(n)));
        if (parsed.record) {
          if (!written_word(parsed.record->status)) {
            ++bad_status;
            last_bad = "status " + parsed.record->status;
          }
        } else if (parsed.torn) {
          ++torn;  // seen, and refused: what a checksum is for
        } else {
          ++untorn_failures;  // a torn read reported as a malformed (stale-looking) record
          last_bad = parsed.problem;
        }
      }
      if (reads % 4 == 0) {
        std::error_code ec;
        pidlock::Inspection insp = m.inspect(lock, {}, ec);
        ++inspections;
        if (ec || !insp.holder) {
          ++inspect_without_record;
          last_bad = ec ? ec.message() : "inspect: " + insp.detail;
        } else if (!written_word(insp.holder->status)) {
          ++bad_status;
          last_bad = "inspect status " + insp.holder->status;
        }
        if (insp.verdict != pidlock::Verdict::kHeld) ++inspect_not_held;
      }
    }
    char line[512];
    std::snprintf(line, sizeof line, "%ld %ld %ld %ld %ld %ld %ld %ld |%s\n", reads, torn, untorn_failures,
                  bad_status, shrank, inspections, inspect_without_record, inspect_not_held,
                  last_bad.substr(0, 200).c_str());
    write_string(report, line);
    return 0;
  });
  stop.close_read();
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  off_t max_size = st.st_size;
  constexpr int kUpdates = 6000;
  for (int i = 0; i < kUpdates; ++i) {
    std::error_code ec;
    handle.update_status(kWords[i % 5], ec);
    ASSERT_FALSE(ec) << ec.message();
    if (i % 500 == 0) {
      ASSERT_EQ(::stat(lock.c_str(), &st), 0);
      EXPECT_GE(st.st_size, max_size) << "the file shrank";
      max_size = std::max(max_size, st.st_size);
    }
  }
  stop.close_write();
  auto line = reader.read_line();
  ASSERT_TRUE(line);
  long reads, torn, untorn_failures, bad_status, shrank, inspections, inspect_without_record, inspect_not_held;
  ASSERT_EQ(std::sscanf(line->c_str(), "%ld %ld %ld %ld %ld %ld %ld %ld", &reads, &torn, &untorn_failures,
                        &bad_status, &shrank, &inspections, &inspect_without_record, &inspect_not_held),
            8)
      << *line;
  const std::string last_bad = line->substr(line->find('|') + 1);
  RecordProperty("reads", static_cast<int>(reads));
  RecordProperty("torn_reads_refused", static_cast<int>(torn));
  EXPECT_GT(reads, 100) << "the reader must really have run concurrently";
  EXPECT_GT(inspections, 10);
  EXPECT_EQ(bad_status, 0) << last_bad;
  EXPECT_EQ(shrank, 0);
  EXPECT_EQ(untorn_failures, 0) << "a torn read must be reported as torn (then re-read), never as a "
                                   "malformed record: "
                                << last_bad;
  EXPECT_EQ(inspect_without_record, 0) << last_bad;
  EXPECT_EQ(inspect_not_held, 0);
  EXPECT_EQ(exit_code(reader.wait()), 0);

  pidlock::ParsedRecord final_record = pidlock::parse_record(read_file(lock));
  ASSERT_TRUE(final_record.record) << final_record.problem;
  EXPECT_EQ(final_record.record->status, kWords[(kUpdates - 1) % 5]);
  EXPECT_EQ(handle.record().status, kWords[(kUpdates - 1) % 5]);
  EXPECT_TRUE(handle.recheck());
  EXPECT_TRUE(kernel_lock_held(lock));
}

TEST(UpdateStatus, ShorterStatusNeverShrinksTheFile) {
  TempDir dir;
  const std::string lock = dir / "shrink.pid";
  LockManager manager;
  AcquireOptions options;
  options.status = "a-rather-long-status-word";
  LockHandle handle = manager.acquire(lock, options);
  const size_t before = read_file(lock).size();
  handle.update_status("x");
  const std::string after = read_file(lock);
  EXPECT_GE(after.size(), before);
  pidlock::ParsedRecord parsed = pidlock::parse_record(after);
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->status, "x");
  EXPECT_EQ(parsed.record->pid, ::getpid());
  EXPECT_EQ(parsed.record->unknown_fields.size(), 0u);
}

TEST(UpdateStatus, MalformedStatusIsRefusedAndNothingIsWritten) {
  TempDir dir;
  const std::string lock = dir / "bad-status.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  const std::string before = read_file(lock);
  for (const std::string& bad : {std::string(""), std::string("two words"), std::string("tab\there"),
                                std::string("new\nline"), std::string(pidlock::kMaxStatusLength + 1, 'a')}) {
    std::error_code ec;
    handle.update_status(bad, ec);
    EXPECT_EQ(ec, pidlock::errc::invalid_argument) << "\"" << bad << "\"";
  }
  EXPECT_THROW(handle.update_status("a b"), pidlock::Error);
  EXPECT_EQ(read_file(lock), before);
  std::error_code ec;
  AcquireOptions options;
  options.status = "with space";
  LockHandle refused = manager.acquire(dir / "other.pid", options, ec);
  EXPECT_EQ(ec, pidlock::errc::invalid_argument);
  EXPECT_FALSE(exists(dir / "other.pid"));
}

TEST(UpdateStatus, AfterTheFileWasReplacedNothingIsWritten) {
  TempDir dir;
  const std::string lock = dir / "replaced-status.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(lock);
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  std::error_code ec;
  handle.update_status("ready", ec);
  EXPECT_EQ(ec, pidlock::errc::lock_lost);
  EXPECT_FALSE(exists(lock)) << "update never re-creates the file";
  write_file(lock, "replacement\n");
  handle.update_status("ready", ec);
  EXPECT_EQ(ec, pidlock::errc::lock_lost);
  EXPECT_EQ(read_file(lock), "replacement\n");
}

}  // namespace
