// Rules 5, 6, 7: records without kernel-lock evidence are judged by pid
// evidence: PostgreSQL's own postmaster.pid and socket lock files (live,
// dead, zombie and reused pids), our own and our parent's pid, and pidlock
// records from another boot or another host.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"
#include "core/judge.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

namespace {

using namespace pidlock_test;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;
using pidlock::detail::judge;
using pidlock::detail::KernelEvidence;
using pidlock::detail::self_identity;

// A live child that sleeps until killed.
Child sleeper() {
  return Child::fork([](int) -> int {
    for (;;) ::pause();
  });
}

// The layouts PostgreSQL writes: postmaster.pid (8 lines) and a socket
// lock file (5 lines).
enum class PgLayout { kPostmasterPid, kSocketLock };

std::string pg_file(PgLayout layout, long pid, std::int64_t start) {
  return layout == PgLayout::kPostmasterPid ? postmaster_pid(pid, "/srv/pg/data", start, 5433, "/run/pg")
                                            : socket_lock(pid, "/srv/pg/data", start, 5433, "/run/pg");
}

class PostgresFile : public ::testing::TestWithParam<PgLayout> {
 protected:
  TempDir dir;
  std::string lock = dir / (GetParam() == PgLayout::kPostmasterPid ? "postmaster.pid" : ".s.PGSQL.5433.lock");
  LockManager manager;
};

TEST_P(PostgresFile, LivePidIsHeld) {
  Child live = sleeper();
  const std::string bytes = pg_file(GetParam(), live.pid(), now());
  write_file(lock, bytes, 0600);
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kHeld);
  EXPECT_EQ(insp.reason, Reason::kPidAlive) << insp.detail;
  EXPECT_FALSE(insp.kernel_lock_evidence && insp.reason == Reason::kKernelLockHeld);
  ASSERT_TRUE(insp.holder);
  EXPECT_EQ(insp.holder->pid, live.pid());
  EXPECT_EQ(insp.holder->format, pidlock::RecordFormat::kPostgresql);
  EXPECT_EQ(insp.holder->data_directory, "/srv/pg/data");
  EXPECT_EQ(insp.holder->port, std::optional<int>(5433));
  EXPECT_EQ(insp.holder->socket_directory, "/run/pg");
  if (GetParam() == PgLayout::kPostmasterPid) {
    EXPECT_EQ(insp.holder->listen_address, "*");
    EXPECT_NE(insp.holder->shared_memory_key.find("5432001"), std::string::npos);
    ASSERT_TRUE(insp.holder->shared_memory) << insp.holder->shared_memory_key;
    EXPECT_EQ(insp.holder->shared_memory->key, 5432001);
    EXPECT_EQ(insp.holder->shared_memory->id, 393216);
    EXPECT_EQ(insp.holder->status, "ready");
  }

  std::error_code ec;
  Inspection held;
  LockHandle h = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(held.reason, Reason::kPidAlive);
  EXPECT_EQ(read_file(lock), bytes) << "a held foreign file is left alone";
}

TEST_P(PostgresFile, DeadPidIsStaleAndTakenOver) {
  const pid_t gone = dead_pid();
  write_file(lock, pg_file(GetParam(), gone, now()), 0600);
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kStale);
  EXPECT_EQ(insp.reason, Reason::kPidDead) << insp.detail;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  ASSERT_TRUE(h.previous_holder() && h.previous_holder()->holder);
  EXPECT_EQ(h.previous_holder()->reason, Reason::kPidDead);
  EXPECT_EQ(h.previous_holder()->holder->pid, gone);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
}

TEST_P(PostgresFile, ZombiePidIsStale) {
  Child zombie = Child::fork([](int) { return 0; });
  zombie.wait_exited_keep_zombie();
  ASSERT_EQ(proc_state(zombie.pid()), 'Z') << "the child must be an unreaped zombie";
  ASSERT_EQ(::kill(zombie.pid(), 0), 0) << "kill(pid, 0) succeeds on a zombie: the trap we test";
  write_file(lock, pg_file(GetParam(), zombie.pid(), now()), 0600);
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kStale);
  EXPECT_EQ(insp.reason, Reason::kZombie) << insp.detail;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kZombie);
  EXPECT_EQ(proc_state(zombie.pid()), 'Z') << "still not reaped while we checked";
}

TEST_P(PostgresFile, ReusedPidIsStale) {
  Child live = sleeper();
  // The record was written an hour before the process now named by the pid
  // started: that process cannot have written it.
  write_file(lock, pg_file(GetParam(), live.pid(), proc_start_epoch(live.pid()) - 3600), 0600);
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kStale);
  EXPECT_EQ(insp.reason, Reason::kPidReused) << insp.detail;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kPidReused);
  EXPECT_EQ(::kill(live.pid(), 0), 0) << "taking over never signals the live process";
}

TEST_P(PostgresFile, SingleUserBackendNegativePidIsJudgedByItsPid) {
  Child live = sleeper();
  write_file(lock, pg_file(GetParam(), -static_cast<long>(live.pid()), now()), 0600);
  Inspection insp = manager.inspect(lock);
  ASSERT_TRUE(insp.holder);
  EXPECT_TRUE(insp.holder->single_user);
  EXPECT_EQ(insp.holder->pid, live.pid());
  EXPECT_EQ(insp.verdict, Verdict::kHeld);
  EXPECT_EQ(insp.reason, Reason::kPidAlive);
}

INSTANTIATE_TEST_SUITE_P(Layouts, PostgresFile,
                         ::testing::Values(PgLayout::kPostmasterPid, PgLayout::kSocketLock),
                         [](const ::testing::TestParamInfo<PgLayout>& info) {
                           return info.param == PgLayout::kPostmasterPid ? "PostmasterPid" : "SocketLock";
                         });

// --- rule 6: our own pid, our parent's, and listed pids ---

struct OwnPidCase {
  const char* name;
  std::function<pid_t()> pid;
};

class OwnPid : public ::testing::TestWithParam<OwnPidCase> {};

TEST_P(OwnPid, RecordFromAnotherIncarnationIsStale) {
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  const pid_t pid = GetParam().pid();
  // Written an hour before this incarnation of the pid started.
  write_file(lock, postmaster_pid(pid, dir.path(), proc_start_epoch(pid) - 3600), 0600);
  LockManager manager;
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kStale);
  EXPECT_EQ(insp.reason, Reason::kOwnIncarnation) << insp.detail;
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kOwnIncarnation);
}

TEST_P(OwnPid, RecordMatchingThisIncarnationIsUnknownAndCountsAsHeld) {
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  const pid_t pid = GetParam().pid();
  const std::string bytes = postmaster_pid(pid, dir.path(), proc_start_epoch(pid));
  write_file(lock, bytes, 0600);
  LockManager manager;
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(insp.verdict, Verdict::kUnknown);
  EXPECT_EQ(insp.reason, Reason::kOwnProcessUnproven) << insp.detail;
  std::error_code ec;
  Inspection held;
  LockHandle h = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(held.reason, Reason::kOwnProcessUnproven);
  EXPECT_EQ(read_file(lock), bytes);
  // The throwing form says that the lock only counts as held.
  try {
    LockHandle again = manager.acquire(lock);
    ADD_FAILURE() << "acquire succeeded";
  } catch (const pidlock::LockHeldError& e) {
    EXPECT_EQ(e.holder().verdict, Verdict::kUnknown);
    EXPECT_NE(std::string(e.what()).find("PID " + std::to_string(pid)), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Pids, OwnPid,
                         ::testing::Values(OwnPidCase{"Self", [] { return ::getpid(); }},
                                           OwnPidCase{"Parent", [] { return ::getppid(); }}),
                         [](const ::testing::TestParamInfo<OwnPidCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(OwnPid, ListedPidsCountAsOwnLikePostgresGrandparent) {
  // A live process whose pid we are told is ours (PostgreSQL's
  // PG_GRANDPARENT_PID): a child here, so that its start time is known.
  Child listed = sleeper();
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  pidlock::JudgeOptions with_listed;
  with_listed.own_pids = {listed.pid()};
  LockManager manager;

  write_file(lock, postmaster_pid(listed.pid(), dir.path(), proc_start_epoch(listed.pid()) - 3600), 0600);
  EXPECT_EQ(manager.inspect(lock, with_listed).reason, Reason::kOwnIncarnation);
  EXPECT_EQ(manager.inspect(lock).reason, Reason::kPidReused) << "not listed: the plain pid rule";

  write_file(lock, postmaster_pid(listed.pid(), dir.path(), proc_start_epoch(listed.pid())), 0600);
  Inspection listed_insp = manager.inspect(lock, with_listed);
  EXPECT_EQ(listed_insp.verdict, Verdict::kUnknown);
  EXPECT_EQ(listed_insp.reason, Reason::kOwnProcessUnproven);
  EXPECT_EQ(manager.inspect(lock).reason, Reason::kPidAlive);

  pidlock::AcquireOptions options;
  options.judge = with_listed;
  std::error_code ec;
  LockHandle h = manager.acquire(lock, options, ec);
  EXPECT_EQ(ec, pidlock::errc::held);
}

TEST(OwnPid, RealGrandparentIsAnOwnPid) {
  const pid_t grandparent = proc_parent(::getppid());
  if (grandparent <= 1) GTEST_SKIP() << "no grandparent other than init here";
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  write_file(lock, postmaster_pid(grandparent, dir.path(), proc_start_epoch(grandparent)), 0600);
  pidlock::JudgeOptions options;
  options.own_pids = {grandparent};
  LockManager manager;
  EXPECT_EQ(manager.inspect(lock, options).reason, Reason::kOwnProcessUnproven);
}

// --- rule 7: pidlock records from another boot or another host ---

pidlock::HolderRecord record_for(pid_t pid) {
  pidlock::HolderRecord r = pidlock::detail::make_record(self_identity(), pid);
  r.data_directory = "/srv/db";
  r.status = "ready";
  return r;
}

pidlock::ParsedRecord parsed_of(const pidlock::HolderRecord& r) {
  pidlock::ParsedRecord p = pidlock::parse_record(pidlock::format_record(r));
  EXPECT_TRUE(p.record) << p.problem;
  return p;
}

TEST(PidlockRecordByPid, LiveHolderWithoutKernelEvidenceIsHeld) {
  Child live = sleeper();
  pidlock::HolderRecord r = record_for(live.pid());
  ASSERT_TRUE(r.process_start_ticks);
  EXPECT_EQ(*r.process_start_ticks, proc_start_ticks(live.pid()));
  Inspection i = judge(parsed_of(r), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kHeld);
  EXPECT_EQ(i.reason, Reason::kPidAlive) << i.detail;
  EXPECT_FALSE(i.kernel_lock_evidence);

  // Another process start (ticks differ): the pid was reused.
  r.process_start_ticks = *r.process_start_ticks + 100;
  i = judge(parsed_of(r), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kStale);
  EXPECT_EQ(i.reason, Reason::kPidReused) << i.detail;
}

TEST(PidlockRecordByPid, OtherBootIsStale) {
  Child live = sleeper();
  pidlock::HolderRecord r = record_for(live.pid());
  r.boot_id = "00000000-0000-4000-8000-000000000000";
  ASSERT_NE(r.boot_id, boot_id());
  Inspection i = judge(parsed_of(r), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kStale);
  EXPECT_EQ(i.reason, Reason::kOtherBoot) << i.detail;

  // On a file system with kernel locks, nobody holds the lock of this
  // record either: stale, whichever evidence is named.
  TempDir dir;
  const std::string lock = dir / "other-boot.pid";
  write_file(lock, pidlock::format_record(r), 0600);
  LockManager manager;
  Inspection file_level = manager.inspect(lock);
  EXPECT_EQ(file_level.verdict, Verdict::kStale);
  EXPECT_TRUE(file_level.reason == Reason::kKernelLockFree || file_level.reason == Reason::kOtherBoot)
      << pidlock::to_string(file_level.reason);

  // Without kernel locks (NFS-like), the boot id decides, and acquire takes
  // the file over.
  NoKernelLocksSystem no_locks;
  ScopedSystem scope(&no_locks);
  EXPECT_EQ(manager.inspect(lock).reason, Reason::kOtherBoot);
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kOtherBoot);
}

TEST(PidlockRecordByPid, OtherHostIsUnknownAndRefused) {
  Child live = sleeper();
  pidlock::HolderRecord r = record_for(live.pid());
  r.host = hostname() + "-otherhost";
  Inspection i = judge(parsed_of(r), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kUnknown);
  EXPECT_EQ(i.reason, Reason::kOtherHost) << i.detail;

  // Even naming a dead pid: a pid of another host says nothing here.
  r.pid = dead_pid();
  i = judge(parsed_of(r), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.reason, Reason::kOtherHost);

  TempDir dir;
  const std::string lock = dir / "other-host.pid";
  const std::string bytes = pidlock::format_record(r);
  write_file(lock, bytes, 0600);
  NoKernelLocksSystem no_locks;
  ScopedSystem scope(&no_locks);
  LockManager manager;
  std::error_code ec;
  Inspection held;
  LockHandle h = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held);
  EXPECT_EQ(held.verdict, Verdict::kUnknown);
  EXPECT_EQ(held.reason, Reason::kOtherHost);
  EXPECT_EQ(read_file(lock), bytes);
}

TEST(PidlockRecordByPid, KernelLockHeldWinsOverDeadPid) {
  // A pidlock record naming a dead pid, but the kernel lock is held (a
  // process inherited the descriptor): held.
  pidlock::HolderRecord r = record_for(::getpid());
  r.pid = dead_pid();
  Inspection i = judge(parsed_of(r), KernelEvidence::kHeld, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kHeld);
  EXPECT_EQ(i.reason, Reason::kKernelLockHeld);
  EXPECT_TRUE(i.kernel_lock_evidence);
}

TEST(PidlockRecordByPid, UnreadableWithoutKernelEvidenceIsUnknown) {
  // (Garbage is no lock record at all: unknown whatever the kernel says.)
  Inspection i = judge(pidlock::parse_record("garbage\n"), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kUnknown);
  EXPECT_EQ(i.reason, Reason::kNotALockRecord);
  i = judge(pidlock::parse_record("31337\n/srv/db\n1\npidlock-format=1\nstatus=x\n"), KernelEvidence::kNone, {},
            self_identity());
  EXPECT_EQ(i.verdict, Verdict::kUnknown) << "a damaged pidlock record without kernel evidence";
  EXPECT_EQ(i.reason, Reason::kUnreadable);
  i = judge(pidlock::parse_record(""), KernelEvidence::kNone, {}, self_identity());
  EXPECT_EQ(i.verdict, Verdict::kUnknown) << "an empty file without kernel evidence may be a starting holder";
}

}  // namespace

namespace {

// Line 7 of postmaster.pid, structured: the key and id as numbers, or
// nothing when the line is not two integers (the text stays as written).
TEST(PostgresSharedMemoryLine, ParsedIntoKeyAndIdOrAbsent) {
  auto line7 = [](const std::string& line) {
    return pidlock::parse_record("4242\n/srv/pg/data\n1700000000\n5433\n/run/pg\n*\n" + line + "\nready   \n");
  };
  pidlock::ParsedRecord padded = line7("  5432001    393216");
  ASSERT_TRUE(padded.record) << padded.problem;
  ASSERT_TRUE(padded.record->shared_memory);
  EXPECT_EQ(*padded.record->shared_memory, (pidlock::SharedMemorySegment{5432001, 393216}));
  EXPECT_EQ(padded.record->shared_memory_key, "5432001    393216");
  for (const std::string& odd : {std::string(""), std::string("5432001"), std::string("key 12"), std::string("1 2x")}) {
    pidlock::ParsedRecord parsed = line7(odd);
    ASSERT_TRUE(parsed.record) << "'" << odd << "': " << parsed.problem;
    EXPECT_FALSE(parsed.record->shared_memory) << "'" << odd << "'";
    EXPECT_EQ(parsed.record->shared_memory_key, odd);
  }
}

}  // namespace
