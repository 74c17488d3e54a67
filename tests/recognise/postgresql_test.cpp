// Recognition and signs of life against a real PostgreSQL 15 (Debian's
// postgresql-15), run as user postgres on a free port with its own socket
// folder: the files it writes are recognised; a backend still attached after the postmaster's
// SIGKILL keeps the lock held (as PostgreSQL itself sees it); a server in
// another pid namespace is held by the signs it leaves; a clean stop frees
// the lock; a reused pid is told from the server; a clock step is not.
// Skipped, saying so, only where PostgreSQL 15 is not installed.
#include <pidlock/pidlock.hpp>

#include "recognise/postgres_server.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pidlock_recognise {
namespace {

using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

class PostgreSQL : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::missing(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_EQ(server_.init(), "");
  }
  PostgresServer server_;
};

// Nothing of a held lock changes under inspect, acquire or break_stale.
void expect_refused_and_untouched(const std::string& lock, Reason reason) {
  const FileFacts before = facts_of(lock);
  LockManager manager;
  std::error_code ec;
  Inspection held;
  LockHandle h = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_EQ(held.reason, reason) << held.detail;
  EXPECT_FALSE(manager.break_stale(lock).removed);
  expect_unchanged(before, facts_of(lock), lock);
}

TEST_F(PostgreSQL, ALiveServersFilesAreRecognisedAndHeld) {
  ASSERT_EQ(server_.start({}), "");
  LockManager manager;
  Inspection insp = manager.inspect(server_.pidfile());
  EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kPidAlive)) << insp.detail;
  ASSERT_TRUE(insp.holder);
  const pidlock::HolderRecord& r = *insp.holder;
  EXPECT_EQ(r.format, pidlock::RecordFormat::kPostgresql);
  EXPECT_EQ(r.pid, server_.postmaster());
  EXPECT_EQ(r.data_directory, server_.data_dir());
  EXPECT_EQ(r.port, std::optional<int>(server_.port()));
  EXPECT_EQ(r.socket_directory, server_.socket_dir());
  EXPECT_EQ(r.status, "ready");
  EXPECT_FALSE(r.shared_memory_key.empty());
  // A real server's line 7: a key, and the id ipcs -m shows.
  ASSERT_TRUE(r.shared_memory) << r.shared_memory_key;
  EXPECT_GT(r.shared_memory->key, 0);
  EXPECT_EQ(std::abs(r.start_time - proc_start_epoch(server_.postmaster())) <= 2, true);
  expect_refused_and_untouched(server_.pidfile(), Reason::kPidAlive);

  Inspection socket = manager.inspect(server_.socket_lock());
  EXPECT_EQ(describe(socket), describe(Verdict::kHeld, Reason::kPidAlive)) << socket.detail;
  ASSERT_TRUE(socket.holder);
  EXPECT_EQ(socket.holder->format, pidlock::RecordFormat::kPostgresql);
  EXPECT_EQ(socket.holder->pid, server_.postmaster());
  expect_refused_and_untouched(server_.socket_lock(), Reason::kPidAlive);
}

// The postmaster is SIGKILLed; a backend busy in COPY ... TO PROGRAM
// (blocked on its pipe, not on a latch, so it does not notice) stays
// attached to the shared memory. PostgreSQL refuses to start then, and
// pidlock must not call the lock stale: `pidlock break` would remove the
// postmaster.pid of a data directory in use.
TEST_F(PostgreSQL, ABackendAttachedAfterThePostmastersSigkillKeepsTheLockHeld) {
  ASSERT_EQ(server_.start({}), "");
  Child psql = server_.psql_in_background("COPY (SELECT 1) TO PROGRAM 'sleep 600'");
  ASSERT_TRUE(eventually([&] {
    for (pid_t p : descendants(server_.postmaster()))
      if (read_file("/proc/" + std::to_string(p) + "/comm") == "sleep\n") return true;
    return false;
  }, kPatience)) << "the COPY never started: " << server_.log();
  const pid_t postmaster = server_.postmaster();
  server_.kill_postmaster();
  ASSERT_NE(::kill(postmaster, 0), 0) << "the postmaster is gone";

  LockManager manager;
  Inspection insp = manager.inspect(server_.pidfile());
  EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kSharedMemoryAttached)) << insp.detail;
  EXPECT_NE(insp.detail.find("pid " + std::to_string(postmaster) + " does not exist"), std::string::npos)
      << insp.detail;
  expect_refused_and_untouched(server_.pidfile(), Reason::kSharedMemoryAttached);

  // Once the backend is gone, the lock is stale, and PostgreSQL agrees: it
  // starts again over the file pidlock would have broken.
  server_.kill_orphans();
  psql.kill();
  psql.wait();
  insp = manager.inspect(server_.pidfile());
  EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidDead)) << insp.detail;
  EXPECT_EQ(server_.start({}), "") << "PostgreSQL starts once nothing is attached";
}

// The servers these tests SIGKILL leave nothing in /dev/shm: run after run,
// a developer's machine would otherwise fill with PostgreSQL's dynamic
// shared memory segments (the server is told to keep them in its data
// directory, which the harness removes).
std::set<std::string> postgres_segments_in_dev_shm() {
  std::set<std::string> names;
  if (DIR* dir = ::opendir("/dev/shm")) {
    while (const dirent* entry = ::readdir(dir))
      if (std::string(entry->d_name).rfind("PostgreSQL.", 0) == 0) names.insert(entry->d_name);
    ::closedir(dir);
  }
  return names;
}

TEST_F(PostgreSQL, AKilledServerLeavesNothingInDevShm) {
  const std::set<std::string> before = postgres_segments_in_dev_shm();
  {
    PostgresServer server;
    ASSERT_EQ(server.init(), "");
    ASSERT_EQ(server.start({}), "");
    server.kill_postmaster();
  }
  std::vector<std::string> left;
  const std::set<std::string> after = postgres_segments_in_dev_shm();
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(left));
  // Tests running beside this one create segments that live for a moment
  // (initdb's bootstrap backends keep theirs in /dev/shm until they exit);
  // a killed server's segment stays for good.
  const bool gone = eventually(
      [&] {
        const std::set<std::string> now = postgres_segments_in_dev_shm();
        left.erase(std::remove_if(left.begin(), left.end(), [&](const std::string& n) { return now.count(n) == 0; }),
                   left.end());
        return left.empty();
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(gone) << "left in /dev/shm for 30 s: " << left.size() << " segment(s), the first " << left.front();
}

// A server in pid and IPC namespaces of its own, as in a container that
// shares the data directory's volume: its postmaster.pid names a pid that
// does not exist here, and its shared memory is invisible. Its processes
// working in the data directory (seen in /proc, the namespace being ours'
// child) keep the lock held; a server listening on the record's socket
// does so even from where /proc cannot see it.
TEST_F(PostgreSQL, AServerInAnotherPidNamespaceIsHeld) {
  PostgresServer::Options options;
  options.own_namespaces = true;
  options.unix_socket = false;  // TCP only: no socket on the record
  options.pid_inside = dead_pid();
  ASSERT_EQ(server_.start(options), "");
  Inspection insp = LockManager().inspect(server_.pidfile());
  ASSERT_TRUE(insp.holder);
  EXPECT_EQ(insp.holder->pid, options.pid_inside) << "the postmaster's pid inside its namespace";
  const bool pid_taken_here = ::kill(options.pid_inside, 0) == 0;
  if (pid_taken_here) {
    EXPECT_EQ(insp.verdict, Verdict::kHeld) << insp.detail;
  } else {
    EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kDataDirectoryInUse)) << insp.detail;
    EXPECT_NE(insp.detail.find("(postgres) works in the data directory"), std::string::npos) << insp.detail;
    expect_refused_and_untouched(server_.pidfile(), Reason::kDataDirectoryInUse);
  }
}

TEST_F(PostgreSQL, AServerInAnotherPidNamespaceListeningOnItsSocketIsHeld) {
  PostgresServer::Options options;
  options.own_namespaces = true;
  options.pid_inside = dead_pid();
  ASSERT_EQ(server_.start(options), "");
  Inspection insp = LockManager().inspect(server_.pidfile());
  if (::kill(options.pid_inside, 0) == 0) GTEST_SKIP() << "pid " << options.pid_inside << " was taken here meanwhile";
  EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kSocketListening)) << insp.detail;
  expect_refused_and_untouched(server_.pidfile(), Reason::kSocketListening);
  // The socket lock file names the same pid; the socket beside it answers.
  Inspection socket = LockManager().inspect(server_.socket_lock());
  EXPECT_EQ(describe(socket), describe(Verdict::kHeld, Reason::kSocketListening)) << socket.detail;
}

// A clean stop removes both files: the lock is free. Their contents, put
// back, are a stale lock (no process, no shared memory, no socket), which
// `break` removes, and after which PostgreSQL starts again.
TEST_F(PostgreSQL, ACleanStopFreesTheLockAndItsLeftoversAreStale) {
  ASSERT_EQ(server_.start({}), "");
  const std::string pidfile_bytes = read_file(server_.pidfile());
  const std::string socket_lock_bytes = read_file(server_.socket_lock());
  ASSERT_EQ(server_.stop(), "");
  LockManager manager;
  EXPECT_EQ(manager.inspect(server_.pidfile()).verdict, Verdict::kFree);
  EXPECT_EQ(manager.inspect(server_.socket_lock()).verdict, Verdict::kFree);

  write_file(server_.pidfile(), pidfile_bytes, 0600);
  write_file(server_.socket_lock(), socket_lock_bytes, 0600);
  for (const std::string& lock : {server_.pidfile(), server_.socket_lock()}) {
    Inspection insp = manager.inspect(lock);
    EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidDead)) << lock << ": " << insp.detail;
    pidlock::BreakResult broke = manager.break_stale(lock);
    EXPECT_TRUE(broke.removed) << lock;
  }
  EXPECT_EQ(server_.start({}), "");
}

// After the server stopped, another process got its pid (made here with
// clone3's set_tid). It started after the record was written: a reused
// pid, and the lock is stale -- while the process, which has nothing to do
// with the data directory, is never signalled.
TEST_F(PostgreSQL, AReusedPidIsToldFromTheServer) {
  ASSERT_EQ(server_.start({}), "");
  const std::string bytes = read_file(server_.pidfile());
  const pid_t pid = server_.postmaster();
  const std::int64_t started = pidlock::parse_record(bytes).record->start_time;
  ASSERT_EQ(server_.stop(), "");
  write_file(server_.pidfile(), bytes, 0600);
  // Past the judge's tolerance for clock rounding (3 s).
  while (now() <= started + 4) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string error;
  Child reuser = spawn_with_pid(pid, {"sleep", "1000"}, "/", &error);
  if (reuser.pid() <= 0) GTEST_SKIP() << "cannot give pid " << pid << " to another process here: " << error;
  ASSERT_EQ(reuser.pid(), pid);

  LockManager manager;
  Inspection insp = manager.inspect(server_.pidfile());
  EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidReused)) << insp.detail;
  LockHandle h = manager.acquire(server_.pidfile());
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kPidReused);
  EXPECT_EQ(::kill(pid, 0), 0) << "the process that reused the pid was never signalled";
  EXPECT_EQ(proc_state(pid), 'S');
}

// The clock stepped forward an hour after the server started: by the
// clock, the process running as the recorded pid started after the record
// (here: a copy of the live server's postmaster.pid whose line 3 is an
// hour early). The server's own signs -- its shared memory, its socket,
// its working directory -- show it is the holder: held, never stale.
TEST_F(PostgreSQL, AClockStepDoesNotMakeALiveServerStale) {
  ASSERT_EQ(server_.start({}), "");
  pidlock::HolderRecord r = *pidlock::parse_record(read_file(server_.pidfile())).record;
  std::string bytes = read_file(server_.pidfile());
  const std::string start = std::to_string(r.start_time);
  bytes.replace(bytes.find("\n" + start + "\n") + 1, start.size(), std::to_string(r.start_time - 3600));
  const std::string copy = server_.data_dir() + "/postmaster.pid.stepped";
  write_file(copy, bytes, 0600);
  Inspection insp = LockManager().inspect(copy);
  EXPECT_EQ(insp.verdict, Verdict::kHeld) << describe(insp) << ": " << insp.detail;
  EXPECT_EQ(insp.reason, Reason::kSharedMemoryAttached) << insp.detail;
  EXPECT_NE(insp.detail.find("started"), std::string::npos) << "the clock's evidence is named: " << insp.detail;
  expect_refused_and_untouched(copy, Reason::kSharedMemoryAttached);
}

// The same, through the command a person uses after a crash.
TEST_F(PostgreSQL, PidlockBreakRefusesWhileABackendLives) {
  if (!have_cli()) GTEST_SKIP() << "this build has no pidlock program";
  ASSERT_EQ(server_.start({}), "");
  Child psql = server_.psql_in_background("COPY (SELECT 1) TO PROGRAM 'sleep 600'");
  ASSERT_TRUE(eventually([&] {
    for (pid_t p : descendants(server_.postmaster()))
      if (read_file("/proc/" + std::to_string(p) + "/comm") == "sleep\n") return true;
    return false;
  }, kPatience));
  server_.kill_postmaster();
  const FileFacts before = facts_of(server_.pidfile());
  Ran broke = run_cli({"break", server_.pidfile()});
  EXPECT_EQ(broke.code, 75) << broke.output;
  EXPECT_NE(broke.output.find("shared memory"), std::string::npos) << broke.output;
  Ran status = run_cli({"status", "--json", server_.pidfile()});
  EXPECT_EQ(status.code, 0) << status.output;
  EXPECT_NE(status.output.find("\"reason\":\"shared-memory-attached\""), std::string::npos) << status.output;
  expect_unchanged(before, facts_of(server_.pidfile()), "pidlock break");
  server_.kill_orphans();
  psql.kill();
  psql.wait();
}

}  // namespace
}  // namespace pidlock_recognise
