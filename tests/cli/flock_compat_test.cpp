// `pidlock run` driven with flock(1)'s spellings, and for cron jobs and
// locks shared by a group (docs/pidlock.1, "Compared with flock(1)").
//
// The flock cases follow what util-linux's own flock tests check
// (tests/ts/flock): a lock held by a background run makes --nonblock,
// --no-fork and --exclusive runs fail with --conflict-exit-code; --shared
// would share it; a waiter with --timeout gets the lock once the holder
// ends; --wait 0 means --nonblock; --close keeps the lock from COMMAND.
// Every holder is a real `pidlock run` process whose COMMAND sleeps.
#include "support/test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace {

using namespace pidlock_test;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kUsage = 64;
constexpr int kCannotCreate = 73;
constexpr int kHeld = 75;
constexpr int kNoPermission = 77;
constexpr gid_t kSharedGroup = 4242;  // a group nobody is not in

std::vector<std::string> with_program(const std::vector<std::string>& args) {
  std::vector<std::string> argv{PIDLOCK_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

class FlockCompat : public ::testing::Test {
 protected:
  // Runs `argv` to its end, its output captured.
  Outcome run(const std::vector<std::string>& argv) {
    return Child::spawn(argv, Stdio::captured_in(dir_.path())).finish();
  }
  Outcome pl(const std::vector<std::string>& args) { return run(with_program(args)); }

  // A running `pidlock run [extra...] LOCK COMMAND` whose COMMAND sleeps
  // until killed (ending the run), once COMMAND runs.
  struct Holder {
    std::unique_ptr<Child> pidlock;
    pid_t command = -1;
    void release() { ::kill(command, SIGTERM); }
    ~Holder() {
      if (command > 0) ::kill(command, SIGKILL);
    }
  };
  std::unique_ptr<Holder> hold(const std::vector<std::string>& extra = {}) {
    auto h = std::make_unique<Holder>();
    const std::string pid_file = dir_ / ("command." + std::to_string(++holders_) + ".pid");
    std::vector<std::string> args{"run"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {lock_, "/bin/sh", "-c",
                             "echo $$ > '" + pid_file + ".tmp' && mv '" + pid_file + ".tmp' '" + pid_file +
                                 "' && exec sleep 60"});
    h->pidlock = std::make_unique<Child>(Child::spawn(with_program(args), Stdio::captured_in(dir_.path())));
    EXPECT_TRUE(eventually([&] { return exists(pid_file) || !h->pidlock->running(); }));
    h->command = static_cast<pid_t>(std::atol(try_read_file(pid_file).value_or("").c_str()));
    EXPECT_GT(h->command, 0) << "COMMAND did not start";
    return h;
  }

  TempDir dir_;
  const std::string lock_ = dir_ / "job.lock";
  const std::string never_ = dir_ / "never";  // a COMMAND that must not run touches it
  int holders_ = 0;
};

// ------------------------------------------------ util-linux's flock cases

TEST_F(FlockCompat, NonblockExitsWithTheConflictCodeAndRunsNothing) {
  auto h = hold();
  for (const std::vector<std::string>& options :
       {std::vector<std::string>{"--nonblocking", "--conflict-exit-code", "123"},
        {"--nonblock", "-E", "123"},
        {"--nb", "--conflict-exit-code=123"},
        {"-n", "-E123"},
        {"-nE", "123"},
        {"--nb", "--exclusive", "--conflict-exit-code", "123"},  // flock's "exclusive" case
        {"-x", "-n", "-E", "123"},
        {"-enE", "123"}}) {
    std::vector<std::string> args{"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {lock_, "touch", never_});
    SCOPED_TRACE(::testing::PrintToString(args));
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, 123);
    EXPECT_FALSE(exists(never_));
  }
  EXPECT_TRUE(h->pidlock->running()) << "the holder must not be disturbed";
}

TEST_F(FlockCompat, ExclusiveIsAcceptedAndRunsWhenFree) {
  Outcome o = pl({"run", "-x", lock_, "echo", "exclusive"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "exclusive\n");
  EXPECT_EXIT_CODE(pl({"run", "-e", "--exclusive", lock_, "true"}), 0);
  EXPECT_FALSE(exists(lock_));
}

TEST_F(FlockCompat, SharedNoForkAndDescriptorFormsAreRefusedSayingWhy) {
  auto h = hold();
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused{
      {{"run", "--shared", lock_, "touch", never_}, "no shared locks"},
      {{"run", "-s", lock_, "touch", never_}, "no shared locks"},
      {{"run", "--no-fork", "-n", lock_, "touch", never_}, "remove the lock file"},
      {{"run", "-F", lock_, "touch", never_}, "remove the lock file"},
      {{"run", "--unlock", lock_, "touch", never_}, "no descriptor form"},
      {{"run", "--fd", "4", lock_, "touch", never_}, "no descriptor form"},
      {{"run", "-n", "4"}, "no descriptor form"},  // flock -n 4
      {{"run", "--fcntl", lock_, "touch", never_}, "open-file-description locks"},
  };
  for (const auto& [args, why] : refused) {
    SCOPED_TRACE(::testing::PrintToString(args));
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, kUsage);
    EXPECT_THAT(o.err, HasSubstr(why));
    EXPECT_FALSE(exists(never_));
  }
  EXPECT_TRUE(h->pidlock->running());
}

TEST_F(FlockCompat, AWaiterWithATimeoutGetsTheLockOnceTheHolderEnds) {
  for (const std::vector<std::string>& wait : {std::vector<std::string>{"--timeout", "30"},
                                               {"--wait", "30"},
                                               {"--wait=30"},
                                               {"-w", "30"},
                                               {"-w30"},
                                               {"--wait"}}) {
    SCOPED_TRACE(::testing::PrintToString(wait));
    auto h = hold();
    std::vector<std::string> args{"run"};
    args.insert(args.end(), wait.begin(), wait.end());
    args.insert(args.end(), {"-E", "5", lock_, "echo", "After timeout."});
    Child waiter = Child::spawn(with_program(args), Stdio::captured_in(dir_.path()));
    EXPECT_EQ(waiter.wait(std::chrono::milliseconds(200)), std::nullopt)
        << "the waiter must wait while the lock is held";
    h->release();
    EXPECT_EXIT_CODE(h->pidlock->finish(), 128 + SIGTERM);
    Outcome o = waiter.finish();
    EXPECT_EXIT_CODE(o, 0);
    EXPECT_EQ(o.out, "After timeout.\n");
  }
}

TEST_F(FlockCompat, ATimeoutEndsWithTheConflictCode) {
  auto h = hold();
  Outcome o = pl({"run", "-w", "0.2", "-E", "5", lock_, "touch", never_});
  EXPECT_EXIT_CODE(o, 5);
  EXPECT_THAT(o.err, HasSubstr("timed out after 0.2 s"));
  EXPECT_EXIT_CODE(pl({"run", "--wait", "0.1", lock_, "touch", never_}), kHeld);
  EXPECT_FALSE(exists(never_));
}

TEST_F(FlockCompat, WaitZeroMeansNonblock) {
  EXPECT_EXIT_CODE(pl({"run", "--wait", "0", lock_, "true"}), 0);  // free: runs
  auto h = hold();
  for (const std::vector<std::string>& zero :
       {std::vector<std::string>{"--wait", "0"}, {"-w", "0"}, {"--timeout=0.0"}}) {
    std::vector<std::string> args{"run"};
    args.insert(args.end(), zero.begin(), zero.end());
    args.insert(args.end(), {"-E", "7", lock_, "touch", never_});
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, 7);
    EXPECT_THAT(o.err, Not(HasSubstr("timed out"))) << "no wait took place";
  }
  EXPECT_FALSE(exists(never_));
}

// Prints "inherited" if COMMAND (this shell) has the lock file open. By
// inode: the descriptor's own name is that of the unnamed file it was.
std::string shows_inherited(const std::string& lock) {
  return "lock=$(stat -c %i '" + lock +
         "'); for f in /proc/$$/fd/*; do "
         "[ \"$(stat -L -c %i \"$f\" 2>/dev/null)\" = \"$lock\" ] && echo inherited; done; true";
}

TEST_F(FlockCompat, CloseKeepsTheLockFromCommand) {
  Outcome inherited = pl({"run", lock_, "/bin/sh", "-c", shows_inherited(lock_)});
  EXPECT_EXIT_CODE(inherited, 0);
  EXPECT_EQ(inherited.out, "inherited\n") << "without -o, COMMAND holds the lock too";
  Outcome closed = pl({"run", "-o", lock_, "/bin/sh", "-c", shows_inherited(lock_)});
  EXPECT_EXIT_CODE(closed, 0);
  EXPECT_EQ(closed.out, "");
  EXPECT_EQ(pl({"run", "--close", lock_, "-c", shows_inherited(lock_)}).out, "");
}

TEST_F(FlockCompat, WithCloseTheLockEndsWithPidlockEvenIfCommandLivesOn) {
  auto h = hold({"--close"});
  h->pidlock->kill(SIGKILL);
  h->pidlock->finish();
  ASSERT_EQ(::kill(h->command, 0), 0) << "COMMAND outlives its pidlock";
  // The lock died with pidlock: the file is stale, and the next run takes it.
  EXPECT_EXIT_CODE(pl({"status", lock_}), 1);
  EXPECT_EXIT_CODE(pl({"run", "-n", lock_, "true"}), 0);

  auto kept = hold();  // without --close, COMMAND keeps the lock
  kept->pidlock->kill(SIGKILL);
  kept->pidlock->finish();
  EXPECT_EXIT_CODE(pl({"status", lock_}), 0);
  EXPECT_EXIT_CODE(pl({"run", "-n", lock_, "touch", never_}), kHeld);
}

TEST_F(FlockCompat, CommandStringRunsThroughTheShell) {
  Outcome o = pl({"run", lock_, "-c", "echo a | tr a b; echo \"$0\" >&2; exit 3"});
  EXPECT_EXIT_CODE(o, 3);
  EXPECT_EQ(o.out, "b\n");
  EXPECT_EQ(o.err, "/bin/sh\n");
  EXPECT_EQ(pl({"run", "--command=echo long", lock_}).out, "long\n");
  EXPECT_EQ(pl({"run", "-c", "echo before", lock_}).out, "before\n");
  // The string holds the lock like any COMMAND.
  EXPECT_EQ(pl({"run", lock_, "-c", "head -1 " + lock_ + " | grep -qx \"$$\" && echo mine"}).out, "mine\n");
  Outcome both = pl({"run", lock_, "-c", "true", "touch", never_});
  EXPECT_EXIT_CODE(both, kUsage);
  EXPECT_THAT(both.err, HasSubstr("both '-c' and COMMAND"));
  EXPECT_EXIT_CODE(pl({"run", lock_, "-c"}), kUsage);
  EXPECT_FALSE(exists(never_));
}

TEST_F(FlockCompat, CommandWithoutDoubleDashKeepsItsOwnOptions) {
  // flock LOCK COMMAND ARG...: the words after COMMAND are COMMAND's.
  Outcome o = pl({"run", lock_, "echo", "--wait", "-n", "--", "x"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "--wait -n -- x\n");
  // Options between LOCKFILE and "--" are still pidlock's.
  o = pl({"run", lock_, "--conflict-exit-code", "9", "--", "echo", "-n", "y"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "y");
}

TEST_F(FlockCompat, TodaysSpellingsStillWork) {
  auto h = hold();
  EXPECT_EXIT_CODE(pl({"run", "--timeout", "0.1", "--conflict-exit-code", "6", lock_, "--", "true"}), 6);
  h->release();
  h->pidlock->finish();
  Outcome o = pl({"run", "--wait", lock_, "--", "echo", "ran"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "ran\n");
  EXPECT_EXIT_CODE(pl({"run", lock_, "--wait", "--", "true"}), 0);
}

TEST_F(FlockCompat, MalformedFlockSpellingsAreUsageErrors) {
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"run", "-w", lock_, "true"},  // -w needs seconds
           {"run", lock_, "-w"},
           {"run", "-E", "256", lock_, "true"},
           {"run", "-E", "", lock_, "true"},
           {"run", "-nZ", lock_, "true"},
           {"run", "--wait=soon", lock_, "true"},
           {"run", "-c", "true", "-c", "true", lock_},
       }) {
    SCOPED_TRACE(::testing::PrintToString(args));
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, kUsage);
    EXPECT_THAT(o.err, HasSubstr("Try 'pidlock run --help'."));
  }
  EXPECT_THAT(pl({"run", "-nZ", lock_, "true"}).err, HasSubstr("'-Z'"));
  EXPECT_FALSE(exists(lock_));
}

TEST_F(FlockCompat, AScriptLocksItselfByRerunningUnderTheLock) {
  // The man page's replacement for flock's descriptor idiom.
  const std::string script = dir_ / "job.sh";
  write_file(script,
             "#!/bin/sh\n"
             "[ \"$PIDLOCK_LOCK\" = '" + lock_ + "' ] ||\n"
             "    exec '" PIDLOCK_CLI_PATH "' run -n '" + lock_ + "' -- \"$0\" \"$@\"\n"
             "echo \"$1 $(head -1 '" + lock_ + "') $$\"\n",
             0755);
  Outcome o = run({script, "arg"});
  EXPECT_EXIT_CODE(o, 0);
  const std::string out = o.out;
  // "arg PID PID": the script ran once, under the lock, which names it.
  const std::size_t space = out.find(' ', 4);
  ASSERT_NE(space, std::string::npos) << out;
  EXPECT_EQ(out.substr(0, 4), "arg ");
  EXPECT_EQ(out.substr(4, space - 4) + "\n", out.substr(space + 1));
  auto h = hold();
  EXPECT_EXIT_CODE(run({script, "arg"}), kHeld);  // the second copy does not run
}

TEST_F(FlockCompat, AFlockOnAnEmptyFileCountsAsHeld) {
  write_file(lock_, "", 0644);
  // flock(1) holds the file; --no-fork makes it become the sleep, so that
  // the Child's end ends the lock.
  Child flock = Child::spawn({"flock", "--no-fork", lock_, "sleep", "60"});
  EXPECT_TRUE(eventually([&] { return pl({"status", lock_}).code == 0; })) << "flock(1) did not lock";
  Outcome o = pl({"run", "-n", lock_, "touch", never_});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_THAT(o.err, HasSubstr("flock"));
  EXPECT_FALSE(exists(never_));
}

// ------------------------------------------------------------------ cron

TEST_F(FlockCompat, QuietSaysNothingOnRefusalSoCronMailsNothing) {
  auto h = hold();
  Outcome o = pl({"run", "--quiet", "--conflict-exit-code", "0", lock_, "touch", never_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
  o = pl({"run", "-qw", "0.1", lock_, "touch", never_});  // a timeout too
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_EQ(o.err, "");
  EXPECT_FALSE(exists(never_));
  // Real failures still speak.
  o = pl({"run", "-q", dir_ / "no/such/folder/job.lock", "true"});
  EXPECT_EXIT_CODE(o, kCannotCreate);
  EXPECT_THAT(o.err, HasSubstr(dir_ / "no/such"));
}

TEST_F(FlockCompat, TheRefusalSpeaksOfTheJobNotOfADataDirectory) {
  auto h = hold();
  Outcome o = pl({"run", lock_, "touch", never_});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_THAT(o.err, HasSubstr("not running \"touch\": lock \"" + lock_ + "\" is held by pid " +
                               std::to_string(h->command)));
  EXPECT_THAT(o.err, HasSubstr("status running"));
  EXPECT_THAT(o.err, Not(HasSubstr("data directory")));
  EXPECT_THAT(pl({"run", lock_, "-c", "backup --all"}).err, HasSubstr("not running \"backup --all\""));
}

// ----------------------------------------------------- mode and group

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST_F(FlockCompat, ModeSetsTheLockFilesPermissions) {
  Outcome o = pl({"run", "--mode", "0640", lock_, "stat", "-c", "%a", lock_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "640\n");
  EXPECT_EQ(pl({"run", "--mode=660", lock_, "stat", "-c", "%a", lock_}).out, "660\n");
  EXPECT_EQ(pl({"run", lock_, "stat", "-c", "%a", lock_}).out, "600\n");  // the default
  for (const char* bad : {"0666", "0400", "0200", "0888", "abc", "", "01600", "06640"}) {
    SCOPED_TRACE(bad);
    o = pl({"run", "--mode", bad, lock_, "touch", never_});
    EXPECT_EXIT_CODE(o, kUsage);
    EXPECT_THAT(o.err, HasSubstr(std::string("'") + bad + "'"));
  }
  EXPECT_FALSE(exists(never_));
  o = pl({"run", "--mode", "0640", "etcd://127.0.0.1:1/locks/job", "touch", never_});
  EXPECT_EXIT_CODE(o, kUsage);
  EXPECT_THAT(o.err, HasSubstr("an etcd lock has no file"));
  EXPECT_EXIT_CODE(pl({"run", "--group", "0", "etcd://127.0.0.1:1/locks/job", "touch", never_}), kUsage);
}

TEST_F(FlockCompat, GroupSetsTheLockFilesGroupByNameOrNumber) {
  if (geteuid() != 0) GTEST_SKIP() << "choosing any group needs root";
  Outcome o = pl({"run", "--group", std::to_string(kSharedGroup), lock_, "stat", "-c", "%g", lock_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, std::to_string(kSharedGroup) + "\n");
  const struct group* named = ::getgrgid(1);  // "daemon" on Debian
  if (named) {
    o = pl({"run", "--group", named->gr_name, lock_, "stat", "-c", "%g", lock_});
    EXPECT_EQ(o.out, "1\n");
  }
  o = pl({"run", "--group", "pidlock-no-such-group", lock_, "touch", never_});
  EXPECT_EXIT_CODE(o, kUsage);
  EXPECT_THAT(o.err, HasSubstr("no group named 'pidlock-no-such-group'"));
  EXPECT_FALSE(exists(never_));
}

// Runs `argv` as nobody with `groups` ("4242", or "" for none) through
// setpriv(1).
std::vector<std::string> as_nobody(const std::string& groups, const std::vector<std::string>& argv) {
  std::vector<std::string> out{"setpriv", "--reuid=65534", "--regid=65534",
                               groups.empty() ? "--clear-groups" : "--groups=" + groups, "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

TEST_F(FlockCompat, AnotherUserOfTheGroupCanInspectTheLockAndOthersCannot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  // The drop is real: nobody, in the group, and unable to read root's files.
  const std::string root_only = dir_ / "root-only";
  write_file(root_only, "secret\n", 0600);
  EXPECT_EQ(run(as_nobody("4242", {"id", "-u"})).out, "65534\n");
  EXPECT_EQ(run(as_nobody("4242", {"id", "-G"})).out, "65534 4242\n");
  EXPECT_NE(run(as_nobody("4242", {"cat", root_only})).code, 0);

  auto h = hold({"--mode", "0640", "--group", std::to_string(kSharedGroup)});
  ASSERT_EQ(mode_of(lock_), 0640u);
  Outcome member = run(as_nobody("4242", with_program({"status", lock_})));
  EXPECT_EXIT_CODE(member, 0);  // held
  EXPECT_THAT(member.out, HasSubstr(std::to_string(h->command)));
  Outcome outsider = run(as_nobody("", with_program({"status", lock_})));
  EXPECT_EXIT_CODE(outsider, 4);  // unknown: it may not read the file
  EXPECT_THAT(outsider.err, HasSubstr("Permission denied"));
}

TEST_F(FlockCompat, AGroupOneIsNotInIsRefusedAndLeavesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0777), 0);
  Outcome o = run(as_nobody("", with_program({"run", "--group", "4242", lock_, "touch", never_})));
  EXPECT_EXIT_CODE(o, kNoPermission);
  EXPECT_THAT(o.err, HasSubstr("set group of lock file"));
  EXPECT_THAT(o.err, HasSubstr(lock_));
  EXPECT_TRUE(dir_.entries().empty()) << "nothing may be left behind";
}

// ------------------------------------------------------- small mistakes

TEST_F(FlockCompat, ADirectoryGetsAHintToTheFileInside) {
  Outcome o = pl({"status", dir_.path()});
  EXPECT_EXIT_CODE(o, 4);
  EXPECT_THAT(o.err, HasSubstr("\"" + dir_.path() + "/postmaster.pid\""));
  o = pl({"run", dir_.path(), "touch", never_});  // flock locks directories
  EXPECT_NE(o.code, 0);
  EXPECT_THAT(o.err, HasSubstr("not a directory"));
  EXPECT_FALSE(exists(never_));
}

TEST_F(FlockCompat, AMissingFolderExits73AndAnEmptyLockfile64) {
  const std::string nowhere = dir_ / "no/such/folder/job.lock";
  EXPECT_EXIT_CODE(pl({"run", nowhere, "touch", never_}), kCannotCreate);
  EXPECT_FALSE(exists(never_));
  for (const char* command : {"run", "status", "break", "wait"}) {
    SCOPED_TRACE(command);
    std::vector<std::string> args{command, ""};
    if (std::string(command) == "run") args.push_back("true");
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, kUsage);
    EXPECT_THAT(o.err, HasSubstr("LOCKFILE is empty"));
  }
}

}  // namespace
