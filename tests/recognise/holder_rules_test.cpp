// Holder rules, with real processes and real namespaces:
//  * pid 1 and other impossible holders neither wedge the path nor break a
//    live holder;
//  * a take-over leaves the file owned as if the new holder had created it
//    (privileges dropped and checked);
//  * the holder's record names the right process in every pid-namespace
//    set-up, including `unshare --pid --fork` without a fresh /proc.
#include <pidlock/pidlock.hpp>

#include "core/judge.hpp"
#include "recognise/recognise_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// Sets the file's modification (and so its last change) time back.
void age(const std::string& path, std::int64_t seconds) {
  const std::int64_t t = now() - seconds;
  struct timeval times[2] = {{static_cast<time_t>(t), 0}, {static_cast<time_t>(t), 0}};
  ASSERT_EQ(::utimes(path.c_str(), times), 0) << std::strerror(errno);
}

// --- pid 0 and pid 1 ---

// A one-line "-1" (or "1") names pid 1. On the machine itself pid 1 is
// init, which holds no lock file: the record proves nothing, and without a
// sign of life the lock is stale, so the path is never wedged.
TEST(PidOne, OnTheMachineItIsInitAndNoHolder) {
  if (!in_initial_pid_namespace()) GTEST_SKIP() << "this test runs in a container; PidOne.InAContainer* cover pid 1 there";
  for (const char* bytes : {"-1\n", "1\n", "         1\n"}) {
    SCOPED_TRACE(bytes);
    TempDir dir;
    const std::string lock = dir / "one.pid";
    write_file(lock, bytes);
    LockManager manager;
    Inspection insp = manager.inspect(lock);
    EXPECT_EQ(describe(insp), describe(Verdict::kStale, Reason::kPidImpossible)) << insp.detail;
    EXPECT_NE(insp.detail.find("init"), std::string::npos) << insp.detail;
    LockHandle h = manager.acquire(lock);
    EXPECT_TRUE(h.took_over());
  }
}

// An impossible holder with a sign of life is held all the same: a process
// that keeps the file open for writing (as Python's SoftFileLock does).
TEST(PidOne, AnImpossibleHolderWithASignOfLifeIsHeld) {
  for (const char* bytes : {"0\n", "-1\n"}) {
    SCOPED_TRACE(bytes);
    if (std::string(bytes) == "-1\n" && !in_initial_pid_namespace()) continue;
    TempDir dir;
    const std::string lock = dir / "zero.pid";
    write_file(lock, bytes);
    Child keeper = Child::fork([&](int report) -> int {
      int fd = ::open(lock.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return 1;
      write_string(report, "open\n");
      for (;;) ::pause();
    });
    ASSERT_EQ(keeper.read_line(), std::optional<std::string>("open"));
    const FileFacts before = facts_of(lock);
    LockManager manager;
    Inspection insp = manager.inspect(lock);
    EXPECT_EQ(describe(insp), describe(Verdict::kHeld, Reason::kLockFileOpen)) << insp.detail;
    EXPECT_NE(insp.detail.find(std::to_string(keeper.pid())), std::string::npos) << insp.detail;
    EXPECT_FALSE(manager.break_stale(lock).removed);
    std::error_code ec;
    LockHandle h = manager.acquire(lock, {}, ec);
    EXPECT_EQ(ec, pidlock::errc::held);
    expect_unchanged(before, facts_of(lock), "a held impossible holder");
    keeper.kill();
    keeper.wait();
    EXPECT_EQ(manager.inspect(lock).verdict, Verdict::kStale);
  }
}

// Runs `pidlock_test_holder inspect LOCK` as pid 3 of a new pid namespace
// (pid 1 a shell that waits for `go`, pid 2 the shell that starts the
// inspector), so that pid 1 is neither the inspector nor its parent: a
// container's first process. Returns the inspector's line.
std::string inspect_in_container(const std::string& lock, const std::string& go, const std::function<void()>& then) {
  const std::string script = "while [ ! -e '" + go + "' ]; do sleep 0.02; done; sh -c '" +
                             std::string(holder_program()) + " inspect " + lock + "; true'";
  Child ns = Child::spawn({"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script});
  EXPECT_TRUE(eventually([&] { return descendants(ns.pid()).size() >= 1; }, kPatience));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  then();
  write_file(go, "");
  std::string line = ns.read_line().value_or("(no answer)");
  ns.wait();
  return line;
}

// In a container pid 1 is the container's first process, which may well
// be the holder (a daemon run as the container's entry point): it counts
// as alive while the record may be its own, and as a reused pid once the
// file is older than it (the container was restarted).
TEST(PidOne, InAContainerItIsHeldWhileTheFileIsNewerThanIt) {
  TempDir dir;
  const std::string lock = dir / "one.pid", go = dir / "go";
  std::string line = inspect_in_container(lock, go, [&] { write_file(lock, "-1\n"); });
  EXPECT_EQ(line, describe(Verdict::kHeld, Reason::kPidAlive));
}

TEST(PidOne, InAContainerItIsNoHolderOfAFileOlderThanIt) {
  TempDir dir;
  const std::string lock = dir / "one.pid", go = dir / "go";
  write_file(lock, "-1\n");
  age(lock, 600);  // written ten minutes before the container started
  std::string line = inspect_in_container(lock, go, [] {});
  EXPECT_EQ(line, describe(Verdict::kStale, Reason::kPidReused));
}

// --- who owns a taken-over file ---

// A stale lock file left by a holder that ran as nobody: root takes it over
// and must not leave it writable by nobody, who could otherwise rewrite
// line 1 while root holds the lock (and `kill $(head -1 LOCK)` run by root
// would signal whatever nobody wrote).
TEST(TakeOver, AnotherUsersStaleFileEndsUpOwnedByTheNewHolder) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as a second user";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);  // nobody may create the lock here
  const std::string lock = dir / "job.pid";
  Child holder = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) return 1;
    ::dup2(report, STDOUT_FILENO);
    ::execl(holder_program(), holder_program(), "acquire", lock.c_str(), static_cast<char*>(nullptr));
    return 127;
  });
  const std::string ready = holder.read_line().value_or("(no report)");
  ASSERT_EQ(ready.rfind("ready ", 0), 0u) << ready;
  holder.kill();
  holder.wait();
  struct stat left {};
  ASSERT_EQ(::stat(lock.c_str(), &left), 0);
  ASSERT_EQ(left.st_uid, kNobody) << "the stale file is nobody's";

  LockManager manager;
  LockHandle h = manager.acquire(lock);
  ASSERT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, Reason::kKernelLockFree);
  struct stat taken {};
  ASSERT_EQ(::stat(lock.c_str(), &taken), 0);
  EXPECT_EQ(taken.st_uid, ::geteuid()) << "owner as if we had created it";
  EXPECT_EQ(taken.st_gid, ::getegid()) << "group as if we had created it";
  EXPECT_EQ(taken.st_mode & 07777, 0600u);
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));

  // nobody cannot rewrite the record now (and proves it dropped root).
  Child other = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    int fd = ::open(lock.c_str(), O_WRONLY | O_CLOEXEC);
    write_string(report, fd >= 0 ? "opened for writing\n" : std::string("open: ") + std::strerror(errno) + "\n");
    return 0;
  });
  EXPECT_EQ(other.read_line(), std::optional<std::string>(std::string("open: ") + std::strerror(EACCES)));
  other.wait();
  EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
  EXPECT_FALSE(h.release());
}

// Our own stale file is taken over in place (same inode), its mode made
// ours; in a set-group-ID folder the group is the folder's, as creation
// would give it, so a file of another group is replaced by a fresh one.
TEST(TakeOver, OwnFileInPlaceAndTheFoldersGroupInASetgidFolder) {
  TempDir dir;
  const std::string lock = dir / "own.pid";
  write_file(lock, std::to_string(dead_pid()) + "\n", 0644);
  struct stat before {};
  ASSERT_EQ(::stat(lock.c_str(), &before), 0);
  {
    LockManager manager;
    LockHandle h = manager.acquire(lock);
    ASSERT_TRUE(h.took_over());
    struct stat after {};
    ASSERT_EQ(::stat(lock.c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino) << "our own file is rewritten in place";
    EXPECT_EQ(after.st_mode & 07777, 0600u);
  }
  if (::geteuid() != 0) return;
  const std::string shared = dir / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0770), 0);
  ASSERT_EQ(::chown(shared.c_str(), 0, kNobody), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 02770), 0);
  const std::string in_group = shared + "/job.pid";
  write_file(in_group, std::to_string(dead_pid()) + "\n", 0600);
  ASSERT_EQ(::chown(in_group.c_str(), 0, 0), 0);  // root's group, not the folder's
  LockManager manager;
  LockHandle h = manager.acquire(in_group);
  ASSERT_TRUE(h.took_over());
  struct stat fresh {};
  ASSERT_EQ(::stat(in_group.c_str(), &fresh), 0);
  // A file of another group is replaced, not rewritten: the group shows it
  // (the new file may well get the freed inode number back).
  EXPECT_EQ(fresh.st_gid, kNobody) << "the set-group-ID folder's group, as creation gives it";
  EXPECT_EQ(fresh.st_uid, ::geteuid());
}

// --- the holder's record in every pid-namespace set-up ---

// `unshare --pid --fork` without --mount-proc: /proc still shows the outer
// namespace, where the holder's pid 2 is another process (kthreadd, say).
// The record of a holder named by pid (update_holder_pid, as `pidlock run`
// does for COMMAND) must describe the holder, not that process.
TEST(NamespaceRecord, WithoutAFreshProcTheRecordStillDescribesTheHolder) {
  TempDir dir;
  const std::string lock = dir / "ns.pid";
  Child ns = Child::spawn({"unshare", "--pid", "--fork", "--kill-child", holder_program(), "hand-to-child", lock});
  const std::string ready = ns.read_line().value_or("(no report)");
  ASSERT_EQ(ready, "ready 2") << "pidlock_test_holder is pid 1 of the namespace, its child pid 2";
  // The child's pid here: the holder is unshare's child, the sleeper its.
  std::vector<pid_t> tree = descendants(ns.pid());
  ASSERT_EQ(tree.size(), 2u);
  const pid_t holder_outside = tree[0], child_outside = tree[1];
  ASSERT_EQ(proc_parent(child_outside), holder_outside);

  pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, 2);
  ASSERT_TRUE(parsed.record->process_start_ticks);
  EXPECT_EQ(*parsed.record->process_start_ticks, proc_start_ticks(child_outside))
      << "the start of the holder's child, not of /proc/2 outside";
  ASSERT_TRUE(parsed.record->pid_namespace);
  EXPECT_EQ(*parsed.record->pid_namespace,
            pid_namespace_inode("/proc/" + std::to_string(holder_outside) + "/ns/pid"))
      << "the namespace in which pid 2 names the holder";
  EXPECT_EQ(proc_start_epoch(child_outside) - parsed.record->start_time <= 1, true);
}

// The judge inside such a namespace: a record names pid N of the namespace
// (a live process there) while /proc's N outside is another, younger
// process. Reading /proc/N would call the pid reused, and a live holder
// stale; the judge must find the namespace's N instead.
TEST(NamespaceRecord, WithoutAFreshProcTheJudgeReadsTheRightProcess) {
  TempDir dir;
  const std::string lock = dir / "judged.pid", go = dir / "go";
  const pid_t n = dead_pid();  // free outside, and so chosen inside
  const std::string script = "echo " + std::to_string(n - 1) + " > /proc/sys/kernel/ns_last_pid && "
                             "{ sleep 1000 & } && echo started && "
                             "while [ ! -e '" + go + "' ]; do sleep 0.02; done; sh -c '" +
                             std::string(holder_program()) + " inspect " + lock + "; true'";
  Child ns = Child::spawn({"unshare", "--pid", "--fork", "--kill-child", "sh", "-c", script});
  ASSERT_EQ(ns.read_line(), std::optional<std::string>("started"));
  // The namespace's pid N, as seen here: the sleeper.
  pid_t sleeper_outside = 0;
  std::string seen;
  for (pid_t p : descendants(ns.pid())) {
    const std::string status = read_file("/proc/" + std::to_string(p) + "/status");
    seen += std::to_string(p) + ": " + status.substr(0, status.find('\n')) + "; ";
    if (status.find("\nNSpid:\t" + std::to_string(p) + "\t" + std::to_string(n) + "\n") != std::string::npos)
      sleeper_outside = p;
  }
  ASSERT_GT(sleeper_outside, 0) << "no process is pid " << n << " inside: " << seen;

  // A record of it without kernel lock (judged by pid), as its holder
  // would write it: pid N, its start ticks, the namespace.
  pidlock::HolderRecord r;
  r.pid = n;
  r.data_directory = dir.path();
  r.start_time = proc_start_epoch(sleeper_outside);
  r.process_start_ticks = proc_start_ticks(sleeper_outside);
  r.boot_id = boot_id();
  r.pid_namespace = pid_namespace_inode("/proc/" + std::to_string(sleeper_outside) + "/ns/pid");
  r.host = hostname();
  r.status = "ready";
  r.without_kernel_lock = true;
  write_file(lock, pidlock::format_record(r));

  // Outside, pid N becomes another process, younger than the sleeper (by
  // more than one clock tick, the unit of start times).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string error;
  Child impostor = spawn_with_pid(n, {"sleep", "1000"}, "/", &error);
  if (impostor.pid() <= 0) GTEST_SKIP() << "cannot make pid " << n << " here: " << error;
  ASSERT_NE(proc_start_ticks(n), proc_start_ticks(sleeper_outside));

  write_file(go, "");
  EXPECT_EQ(ns.read_line(), std::optional<std::string>(describe(Verdict::kHeld, Reason::kPidAlive)))
      << "the judge inside must read its own pid " << n << ", not /proc/" << n;
  ns.kill();
  ns.wait();
  kill_tree(ns.pid(), false);
}

}  // namespace
}  // namespace pidlock_recognise
