// Positive evidence of life before "stale", one
// test per row of the table in docs/guide.md ("Signs of life"), each with
// real processes -- util-linux flock(1), Debian's python3-filelock, a
// process in another pid namespace, a System V segment with an attached
// process, a listening socket -- and each shown stale again once the sign
// is gone. Where a sign cannot be read (EACCES as another user, privileges
// dropped and checked), the verdict is unknown. (PostgreSQL's own
// processes: postgresql_test.cpp.)
#include <pidlock/pidlock.hpp>

#include "recognise/recognise_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

namespace pidlock_recognise {
namespace {

using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

// A postmaster.pid naming `pid`, with `data_dir`, the socket directory and
// port, and the shared-memory key and id on line 7.
std::string postmaster(pid_t pid, const std::string& data_dir, std::int64_t start, const std::string& socket_dir,
                       int port, const std::string& shm_line) {
  return std::to_string(pid) + "\n" + data_dir + "\n" + std::to_string(start) + "\n" + std::to_string(port) + "\n" +
         socket_dir + "\n\n" + shm_line + "\nready   \n";
}

// The held verdict and its refusal: inspect, acquire and break_stale all
// leave the file exactly as it was.
void expect_held_and_untouched(const std::string& lock, Reason reason) {
  const FileFacts before = facts_of(lock);
  LockManager manager;
  Inspection insp = manager.inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kHeld, reason)) << insp.detail;
  EXPECT_NE(insp.detail.find("; but "), std::string::npos) << "the detail names the stale evidence and the sign";
  std::error_code ec;
  Inspection held;
  LockHandle h = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held) << ec.message();
  EXPECT_EQ(held.reason, reason) << held.detail;
  EXPECT_FALSE(manager.break_stale(lock).removed);
  expect_unchanged(before, facts_of(lock), std::string("held by ") + pidlock::to_string(reason));
}

// --- flock(), the kernel lock of util-linux flock(1) and Python's filelock ---

TEST(SignsOfLife, FlockOfUtilLinuxFlockHoldsAnEmptyFile) {
  TempDir dir;
  const std::string lock = dir / "cron.lock";
  // flock(1) creates the file empty and holds a flock() on it while the
  // command runs.
  Child flock = Child::spawn({"flock", lock, "sh", "-c", "echo ready; exec sleep 1000"});
  ASSERT_EQ(flock.read_line(), std::optional<std::string>("ready"));
  ASSERT_EQ(read_file(lock), "");
  expect_held_and_untouched(lock, Reason::kFlockHeld);
  kill_tree(flock.pid(), true);
  flock.wait();
  age_file(lock, 60);  // a young empty one may be in creation (stale_file_test.cpp)
  Inspection insp = LockManager().inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kEmptyFile)) << insp.detail;
}

// Debian 12's python3-filelock (3.9.0): FileLock is a flock() on a file it
// truncates and leaves behind; SoftFileLock creates the file empty with
// O_EXCL and keeps it open for writing until release.
const char* const kPython = "/usr/bin/python3";

std::string python_filelock_missing() {
  Child probe = Child::spawn({kPython, "-c", "import filelock; print(filelock.__version__)"});
  std::string line = probe.read_line().value_or("");
  const int status = probe.wait();
  return exit_code(status) == 0 && !line.empty() ? std::string() : "no python3-filelock for " + std::string(kPython);
}

Child python_holder(const std::string& kind, const std::string& lock) {
  return Child::spawn({kPython, "-c",
                       "import filelock, sys, time\n"
                       "lock = filelock." + kind + "(sys.argv[1])\n"
                       "lock.acquire()\n"
                       "print('ready', flush=True)\n"
                       "time.sleep(1000)\n",
                       lock});
}

TEST(SignsOfLife, PythonFilelockHolders) {
  if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is not installed";
  if (std::string missing = python_filelock_missing(); !missing.empty()) GTEST_SKIP() << missing;
  for (const auto& [kind, reason] : {std::pair<std::string, Reason>{"FileLock", Reason::kFlockHeld},
                                     std::pair<std::string, Reason>{"SoftFileLock", Reason::kLockFileOpen}}) {
    SCOPED_TRACE(kind);
    TempDir dir;
    const std::string lock = dir / "py.lock";
    Child holder = python_holder(kind, lock);
    ASSERT_EQ(holder.read_line(), std::optional<std::string>("ready"));
    ASSERT_EQ(read_file(lock), "") << "this python3-filelock writes no pid";
    // Young, an empty file that nobody flock()s is "in creation" (it counts
    // as held, too); older, its holder's open descriptor is what shows it.
    if (reason == Reason::kLockFileOpen) age_file(lock, 60);
    expect_held_and_untouched(lock, reason);
    holder.kill();
    holder.wait();
    LockManager manager;
    EXPECT_EQ(manager.inspect(lock).reason, Reason::kEmptyFile);
    LockHandle h = manager.acquire(lock);
    EXPECT_TRUE(h.took_over());
  }
}

// --- a process that keeps the lock file open, in another pid namespace ---

TEST(SignsOfLife, LockFileKeptOpenByAProcessInAnotherPidNamespace) {
  TempDir dir;
  const std::string lock = dir / "daemon.pid";
  const pid_t gone = dead_pid();
  write_file(lock, std::to_string(gone) + "\n");
  Child ns = Child::spawn({"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                           "exec 3>>'" + lock + "'; echo ready; exec sleep 1000"});
  ASSERT_EQ(ns.read_line(), std::optional<std::string>("ready"));
  expect_held_and_untouched(lock, Reason::kLockFileOpen);
  ns.kill();
  ns.wait();
  kill_tree(ns.pid(), false);
  Inspection insp = LockManager().inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidDead)) << insp.detail;
}

// A reader is no holder: `cat`, an editor, another pidlock inspecting.
TEST(SignsOfLife, AFileOpenOnlyForReadingIsNoSign) {
  TempDir dir;
  const std::string lock = dir / "daemon.pid";
  write_file(lock, std::to_string(dead_pid()) + "\n");
  Child reader = Child::spawn({"sh", "-c", "exec 3<'" + lock + "'; echo ready; exec sleep 1000"});
  ASSERT_EQ(reader.read_line(), std::optional<std::string>("ready"));
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidDead);
}

// --- the data directory of a PostgreSQL record ---

// The server's pid means nothing here (another pid namespace), but its
// processes work in the data directory: held. This process and its
// ancestors (an administrator's shell in the data directory) are no sign.
TEST(SignsOfLife, ProcessWorkingInTheDataDirectoryFromAnotherPidNamespace) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  const std::string lock = data + "/postmaster.pid";
  write_file(lock, postmaster(dead_pid(), data, now(), "", 5433, ""));

  char here[4096];
  ASSERT_NE(::getcwd(here, sizeof here), nullptr);
  ASSERT_EQ(::chdir(data.c_str()), 0);
  Inspection ours = LockManager().inspect(lock);
  ASSERT_EQ(::chdir(here), 0);
  EXPECT_EQ(describe(ours), describe(Verdict::kStale, Reason::kPidDead))
      << "our own working directory is no sign: " << ours.detail;

  Child ns = Child::spawn({"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--wd=" + data, "sh", "-c",
                           "echo ready; exec sleep 1000"});
  ASSERT_EQ(ns.read_line(), std::optional<std::string>("ready"));
  expect_held_and_untouched(lock, Reason::kDataDirectoryInUse);
  // The namespace's process first, while unshare (its parent) still lists
  // it: kill_tree returns once it is reaped. Killed through unshare alone,
  // it could still be exiting, its working directory still set, when the
  // next inspect looks.
  kill_tree(ns.pid(), false);
  ns.kill();
  ns.wait();
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidDead);
}

// A forward clock step makes a live holder look younger than its record
// ("started after the lock was written"). PostgreSQL's line 3 is an epoch
// time; before such a pid is called reused, the process now using it must
// show no tie to the lock. Here it works in the data directory: held.
TEST(SignsOfLife, ClockStepIsCorroboratedBeforeAPidIsCalledReused) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  const std::string lock = data + "/postmaster.pid";
  Child server = Child::fork([&](int report) -> int {
    if (::chdir(data.c_str()) != 0) return 1;
    write_string(report, "ready\n");
    for (;;) ::pause();
  });
  ASSERT_EQ(server.read_line(), std::optional<std::string>("ready"));
  // The record says the server started an hour before the process now
  // running as its pid did: what a clock stepped an hour forward after
  // its start looks like.
  write_file(lock, postmaster(server.pid(), data, proc_start_epoch(server.pid()) - 3600, "", 5433, ""));
  const FileFacts before = facts_of(lock);
  Inspection insp = LockManager().inspect(lock);
  EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kDataDirectoryInUse)) << insp.detail;
  EXPECT_NE(insp.detail.find("started"), std::string::npos) << insp.detail;
  EXPECT_FALSE(LockManager().break_stale(lock).removed);
  expect_unchanged(before, facts_of(lock), "clock step");

  // The same pid with no tie to the lock is a reused pid.
  server.kill();
  server.wait();
  Child stranger = Child::fork([](int) -> int {
    for (;;) ::pause();
  });
  write_file(lock, postmaster(stranger.pid(), data, proc_start_epoch(stranger.pid()) - 3600, "", 5433, ""));
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidReused);
}

// --- PostgreSQL's shared memory (line 7) ---

// A System V segment with a process attached: PostgreSQL's interlock
// (backends of a killed postmaster stay attached). A segment of another
// key under the recorded id is another program's, and no sign.
TEST(SignsOfLife, SharedMemorySegmentWithAnAttachedProcess) {
  std::mt19937 random(static_cast<unsigned>(::getpid() ^ now()));
  key_t key = 0;
  int id = -1;
  for (int i = 0; i < 20 && id < 0; ++i) {
    key = static_cast<key_t>(100000000 + random() % 800000000);
    id = ::shmget(key, 64, IPC_CREAT | IPC_EXCL | 0600);
  }
  ASSERT_GE(id, 0) << std::strerror(errno);
  struct Remove {
    int id;
    ~Remove() { ::shmctl(id, IPC_RMID, nullptr); }
  } remove{id};
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  ::chmod(dir.path().c_str(), 0755);
  const std::string line7 = std::to_string(key) + " " + std::to_string(id);
  write_file(lock, postmaster(dead_pid(), "/nonexistent/data", now(), "", 5433, line7), 0644);

  Child backend = Child::fork([&](int report) -> int {
    if (::shmat(id, nullptr, SHM_RDONLY) == reinterpret_cast<void*>(-1)) return 1;
    write_string(report, "attached\n");
    for (;;) ::pause();
  });
  ASSERT_EQ(backend.read_line(), std::optional<std::string>("attached"));
  expect_held_and_untouched(lock, Reason::kSharedMemoryAttached);

  // Another user cannot read the segment (mode 0600, root's): unknown,
  // never stale.
  Child other = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    Inspection insp = LockManager().inspect(lock);
    write_string(report, describe(insp) + "\n");
    return 0;
  });
  EXPECT_EQ(other.read_line(), std::optional<std::string>(describe(Verdict::kUnknown, Reason::kProbeFailed)));
  other.wait();

  // The same id under another key: not PostgreSQL's segment.
  write_file(lock, postmaster(dead_pid(), "/nonexistent/data", now(), "", 5433,
                              std::to_string(key + 1) + " " + std::to_string(id)));
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidDead);

  write_file(lock, postmaster(dead_pid(), "/nonexistent/data", now(), "", 5433, line7));
  backend.kill();
  backend.wait();
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidDead) << "no process attached any more";
}

// --- a server on the record's socket ---

int listen_unix(const std::string& path) {
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 || ::listen(s, 4) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

TEST(SignsOfLife, ServerListeningOnTheRecordsSocket) {
  TempDir dir;
  const std::string sockets = dir / "sockets";
  ASSERT_EQ(::mkdir(sockets.c_str(), 0700), 0);
  const std::string lock = sockets + "/.s.PGSQL.5433.lock";
  write_file(lock, std::to_string(dead_pid()) + "\n/nonexistent/data\n" + std::to_string(now()) + "\n5433\n" +
                       sockets + "\n");
  const int server = listen_unix(sockets + "/.s.PGSQL.5433");
  ASSERT_GE(server, 0) << std::strerror(errno);
  expect_held_and_untouched(lock, Reason::kSocketListening);

  // A socket that cannot be reached (its folder is root's, mode 0700) is
  // no proof either way: unknown for another user.
  const std::string readable = dir / "postmaster.pid";
  ::chmod(dir.path().c_str(), 0755);
  write_file(readable, postmaster(dead_pid(), "/nonexistent/data", now(), sockets, 5433, ""), 0644);
  Child other = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    write_string(report, describe(LockManager().inspect(readable)) + "\n");
    return 0;
  });
  EXPECT_EQ(other.read_line(), std::optional<std::string>(describe(Verdict::kUnknown, Reason::kProbeFailed)));
  other.wait();

  ::close(server);  // the socket file stays, nobody listens: a dead server's
  EXPECT_EQ(LockManager().inspect(lock).reason, Reason::kPidDead);
}

}  // namespace
}  // namespace pidlock_recognise
