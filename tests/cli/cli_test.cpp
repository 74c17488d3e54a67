// Tests of the pidlock program (docs/pidlock.1), run as a user runs it.
//
// Every test forks and execs the built binary and checks its exit status
// and output. Holders are real processes: `pidlock run LOCK -- sh -c 'echo
// $$ >FILE; exec sleep 30'` writes COMMAND's pid to FILE (exec keeps the
// pid), so a test knows COMMAND's pid without asking pidlock. The test
// process is a child subreaper, so that a COMMAND orphaned by a SIGKILLed
// pidlock becomes the test's child and is reaped, not left behind.
#include "support/test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cli_test {
namespace {

using namespace pidlock_test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr int kUsage = 64;
constexpr int kSoftware = 70;
constexpr int kHeld = 75;
constexpr int kLockLost = 79;

// The path of the built program.
const char* pidlock_path() { return PIDLOCK_CLI_PATH; }

// Runs pidlock with `args` to the end, its output captured in `scratch_dir`.
Outcome pidlock(const std::vector<std::string>& args, const std::string& scratch_dir,
                std::chrono::milliseconds limit = 15000ms) {
  std::vector<std::string> argv{pidlock_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Child::spawn(argv, Stdio::captured_in(scratch_dir)).finish(limit);
}

// A COMMAND that records its pid in `pid_file`, then sleeps as that pid.
std::vector<std::string> sleeper(const std::string& pid_file) {
  return {"/bin/sh", "-c", "echo $$ > '" + pid_file + ".tmp' && mv '" + pid_file + ".tmp' '" +
                               pid_file + "' && exec sleep 30"};
}

pid_t parent_of(pid_t pid) {
  std::string stat = try_read_file("/proc/" + std::to_string(pid) + "/stat").value_or("");
  std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  // ") S ppid ..."
  return static_cast<pid_t>(std::atol(stat.c_str() + close + 4));
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { prctl(PR_SET_CHILD_SUBREAPER, 1); }

  void SetUp() override {
    char templ[] = "/tmp/pidlock-cli-test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    char resolved[PATH_MAX];
    ASSERT_NE(realpath(templ, resolved), nullptr);
    dir_ = resolved;
    lock_ = dir_ + "/job.lock";
  }

  void TearDown() override {
    // COMMANDs orphaned by a killed pidlock are our children now.
    for (pid_t pid : commands_)
      if (parent_of(pid) == getpid()) kill(pid, SIGKILL);
    reap_orphans();
    std::string rm = "rm -rf '" + dir_ + "'";
    (void)std::system(rm.c_str());
  }

  Outcome pl(const std::vector<std::string>& args, std::chrono::milliseconds limit = 15000ms) {
    return pidlock(args, dir_, limit);
  }

  std::unique_ptr<Child> start(const std::vector<std::string>& args) {
    std::vector<std::string> argv{pidlock_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(Child::spawn(argv, Stdio::captured_in(dir_)));
  }

  Json status_json(const std::string& lock, int* exit_code = nullptr) {
    Outcome o = pl({"status", "--json", lock});
    if (exit_code) *exit_code = o.exited ? o.code : -1;
    try {
      // Strict, as a consumer parses it: one JSON value and nothing after it.
      return Json::parse(o.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << " in: " << o.out << " stderr: " << o.err;
      return Json{};
    }
  }

  // A running `pidlock run [extra...] LOCK -- sleeper`, once COMMAND runs.
  struct Holder {
    std::unique_ptr<Child> pidlock;
    pid_t command = -1;
  };
  Holder hold(const std::string& lock, const std::vector<std::string>& extra = {}) {
    Holder h;
    std::string pid_file = dir_ + "/command." + std::to_string(++holders_) + ".pid";
    std::vector<std::string> args{"run"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(lock);
    args.push_back("--");
    for (const std::string& a : sleeper(pid_file)) args.push_back(a);
    h.pidlock = start(args);
    EXPECT_TRUE(eventually([&] { return exists(pid_file) || !h.pidlock->running(); }));
    h.command = static_cast<pid_t>(std::atol(try_read_file(pid_file).value_or("").c_str()));
    EXPECT_GT(h.command, 0) << "COMMAND did not start";
    if (h.command > 0) commands_.push_back(h.command);
    return h;
  }

  // Kills a COMMAND orphaned by its pidlock (so it is our child) and reaps it.
  void kill_orphan(pid_t command) {
    ASSERT_TRUE(eventually([&] { return parent_of(command) == getpid(); }))
        << "COMMAND " << command << " was not reparented to the test";
    kill(command, SIGKILL);
    int status;
    waitpid(command, &status, 0);
  }

  // Leaves a stale pidlock lock file at `lock`: its pidlock and its
  // COMMAND were both SIGKILLed.
  void make_stale(const std::string& lock) {
    Holder h = hold(lock);
    h.pidlock->kill(SIGKILL);
    h.pidlock->finish();
    kill_orphan(h.command);
    // The sleeper's `mv` may still be exiting, holding the descriptor it
    // inherited: the lock is stale only once it is gone too.
    EXPECT_TRUE(eventually([&] { return !kernel_lock_held(lock); })) << "a process still holds " << lock;
  }

  std::string dir_;
  std::string lock_;
  std::vector<pid_t> commands_;
  int holders_ = 0;
};

// ---------------------------------------------------------------- top level

TEST_F(CliTest, VersionPrintsTheVersion) {
  Outcome o = pl({"--version"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "pidlock 0.1.0\n");
  EXPECT_EQ(o.err, "");
}

TEST_F(CliTest, HelpListsEveryCommand) {
  Outcome o = pl({"--help"});
  EXPECT_EXIT_CODE(o, 0);
  for (const char* word : {"run", "status", "break", "wait", "--conflict-exit-code", "--json"})
    EXPECT_THAT(o.out, HasSubstr(word));
  EXPECT_EXIT_CODE(pl({"-h"}), 0);
}

TEST_F(CliTest, EveryCommandHasItsOwnHelp) {
  for (const char* command : {"run", "status", "break", "wait"}) {
    Outcome o = pl({command, "--help"});
    EXPECT_EXIT_CODE(o, 0);
    EXPECT_THAT(o.out, HasSubstr(std::string("Usage: pidlock ") + command));
  }
  // --help wins even where the rest of the line is incomplete.
  Outcome o = pl({"run", "--wait", "--help"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_THAT(o.out, HasSubstr("--conflict-exit-code"));
  EXPECT_FALSE(exists(lock_));
}

// ------------------------------------------------------------- usage errors

TEST_F(CliTest, UsageErrorsExit64WithAHint) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"--frobnicate"},
      {"--version", "extra"},
      {"run"},
      {"run", "--", "true"},                                // no LOCKFILE
      {"run", lock_},                                       // no COMMAND
      {"run", ""},                                          // empty LOCKFILE
      {"run", lock_, "--"},                                 // no COMMAND
      {"run", "--bogus", lock_, "--", "true"},              // unknown option
      {"run", "--timeout", "abc", lock_, "--", "true"},     // not a number
      {"run", "--timeout", "-1", lock_, "--", "true"},      // negative
      {"run", "--timeout", "1e3", lock_, "--", "true"},     // no exponents
      {"run", "--timeout", "inf", lock_, "--", "true"},
      {"run", "--timeout", "", lock_, "--", "true"},
      {"run", "--timeout=", lock_, "--", "true"},
      {"run", lock_, "--timeout"},                          // missing value... and no --
      {"run", "--conflict-exit-code", "300", lock_, "--", "true"},
      {"run", "--conflict-exit-code", "-1", lock_, "--", "true"},
      {"run", "--conflict-exit-code", "x", lock_, "--", "true"},
      {"run", "--wait=yes", lock_, "--", "true"},
      {"run", "--data-dir", "", lock_, "--", "true"},
      {"status"},
      {"status", lock_, lock_},
      {"status", "--jsonx", lock_},
      {"break"},
      {"break", "--force", lock_},
      {"wait"},
      {"wait", "--timeout", "soon", lock_},
      {"wait", "--timeout"},
  };
  for (const auto& args : bad) {
    std::string line;
    for (const auto& a : args) line += " '" + a + "'";
    SCOPED_TRACE("pidlock" + line);
    Outcome o = pl(args);
    EXPECT_EXIT_CODE(o, kUsage);
    EXPECT_THAT(o.err, HasSubstr("Try 'pidlock"));
    EXPECT_THAT(o.err, HasSubstr("--help'."));
    EXPECT_EQ(o.out, "");
    EXPECT_FALSE(exists(lock_)) << "a usage error must not take the lock";
  }
}

TEST_F(CliTest, UsageErrorNamesTheProblem) {
  Outcome o = pl({"run", "--timeout", "abc", lock_, "--", "true"});
  EXPECT_THAT(o.err, HasSubstr("pidlock run: invalid value 'abc' for '--timeout'"));
  EXPECT_THAT(o.err, HasSubstr("Try 'pidlock run --help'."));
  o = pl({"run", lock_});
  EXPECT_THAT(o.err, HasSubstr("missing COMMAND"));
  o = pl({"run", "--", "true"});
  EXPECT_THAT(o.err, HasSubstr("missing LOCKFILE"));
  o = pl({"frobnicate"});
  EXPECT_THAT(o.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(o.err, HasSubstr("Try 'pidlock --help'."));
}

// -------------------------------------------------------------------- run

TEST_F(CliTest, RunRunsTheCommandAndRemovesTheLock) {
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "echo out; echo err >&2"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunPassesTheCommandsArgumentsUntouched) {
  // Options after "--" belong to COMMAND, not to pidlock.
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "printf '%s|' \"$@\"", "sh", "--help", "--", "a b"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "--help|--|a b|");
}

TEST_F(CliTest, RunExitsWithTheCommandsStatus) {
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "/bin/sh", "-c", "exit 3"}), 3);
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "/bin/sh", "-c", "exit 255"}), 255);
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "false"}), 1);
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunReports128PlusTheSignalThatKilledTheCommand) {
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "/bin/sh", "-c", "kill -TERM $$"}), 128 + SIGTERM);
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "/bin/sh", "-c", "kill -KILL $$"}), 128 + SIGKILL);
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunReports127ForAMissingCommand) {
  Outcome o = pl({"run", lock_, "--", "pidlock-test-no-such-command"});
  EXPECT_EXIT_CODE(o, 127);
  EXPECT_THAT(o.err, HasSubstr("pidlock-test-no-such-command"));
  EXPECT_THAT(o.err, HasSubstr("No such file or directory"));
  EXPECT_FALSE(exists(lock_));
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", dir_ + "/missing/command"}), 127);
}

TEST_F(CliTest, RunReports126ForACommandThatCannotBeExecuted) {
  std::string script = dir_ + "/not-executable";
  write_file(script, "#!/bin/sh\necho ran\n");
  chmod(script.c_str(), 0644);
  Outcome o = pl({"run", lock_, "--", script});
  EXPECT_EXIT_CODE(o, 126);
  EXPECT_THAT(o.err, HasSubstr("Permission denied"));
  EXPECT_EQ(o.out, "");
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", dir_}), 126);  // a directory
  EXPECT_FALSE(exists(lock_));
}

// A lock file that someone else deleted, replaced or rewrote while
// COMMAND ran is no longer ours: nothing is removed, and run says so and
// exits 79 whatever COMMAND's status (COMMAND may have overlapped another
// holder). The job's shell, a separate process, does the damage.
TEST_F(CliTest, RunExits79NamingThePathWhenTheLockFileWasDeleted) {
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "rm -f \"$PIDLOCK_LOCK\""});
  EXPECT_EXIT_CODE(o, kLockLost);
  EXPECT_THAT(o.err, HasSubstr("lost the lock \"" + lock_ + "\""));
  EXPECT_THAT(o.err, HasSubstr("deleted"));
  EXPECT_THAT(o.err, HasSubstr("exit status was 0"));
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunExits79AndLeavesAReplacementInPlace) {
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c",
                  "printf '4242\\nanother program\\n' > \"$PIDLOCK_LOCK.new\" && "
                  "mv \"$PIDLOCK_LOCK.new\" \"$PIDLOCK_LOCK\"; exit 3"});
  EXPECT_EXIT_CODE(o, kLockLost);
  EXPECT_THAT(o.err, HasSubstr("lost the lock \"" + lock_ + "\""));
  EXPECT_THAT(o.err, HasSubstr("replaced by another file"));
  EXPECT_THAT(o.err, HasSubstr("exit status was 3"));
  EXPECT_EQ(read_file(lock_), "4242\nanother program\n") << "the replacement is not ours to remove";
}

TEST_F(CliTest, RunExits79AndKeepsAFileWhoseRecordWasRewritten) {
  // The same file (same inode), truncated and rewritten in place.
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "echo 4242 > \"$PIDLOCK_LOCK\""});
  EXPECT_EXIT_CODE(o, kLockLost);
  EXPECT_THAT(o.err, HasSubstr("lost the lock \"" + lock_ + "\""));
  EXPECT_THAT(o.err, HasSubstr("record was rewritten"));
  EXPECT_EQ(read_file(lock_), "4242\n");
}

TEST_F(CliTest, WhileTheCommandRunsTheRecordNamesItAndStatusSaysHeld) {
  Holder h = hold(lock_);
  int code = -1;
  Json j = status_json(lock_, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["state"].get<std::string>(), "held");
  EXPECT_EQ(j["reason"].get<std::string>(), "kernel-lock-held");
  EXPECT_EQ(j["pid"].get<double>(), h.command);
  EXPECT_EQ(j["format"].get<std::string>(), "pidlock");
  EXPECT_EQ(j["data_dir"].get<std::string>(), dir_);
  EXPECT_EQ(j["status"].get<std::string>(), "running");
  EXPECT_TRUE(j["kernel_lock_evidence"].get<bool>());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_EQ(j["host"].get<std::string>(), host);
  EXPECT_NEAR(j["start_time"].get<double>(), static_cast<double>(time(nullptr)), 30);
  // Line 1 alone is the pid, for `kill $(head -1 FILE)` and PIDFile=.
  std::string record = read_file(lock_);
  EXPECT_EQ(record.substr(0, record.find('\n')), std::to_string(h.command));
  EXPECT_EQ(parent_of(h.command), h.pidlock->pid());

  Outcome human = pl({"status", lock_});
  EXPECT_EXIT_CODE(human, 0);
  EXPECT_THAT(human.out, HasSubstr("held"));
  EXPECT_THAT(human.out, HasSubstr(std::to_string(h.command)));

  kill(h.command, SIGTERM);
  EXPECT_EXIT_CODE(h.pidlock->finish(), 128 + SIGTERM);
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunRecordsTheDataDirectory) {
  Outcome o = pl({"run", "--data-dir", "/srv/db", lock_, "--", "sed", "-n", "2p", lock_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.out, "/srv/db\n");
  o = pl({"run", "--data-dir=/srv/other", lock_, "--", "sed", "-n", "2p", lock_});
  EXPECT_EQ(o.out, "/srv/other\n");
  o = pl({"run", lock_, "--", "sed", "-n", "2p", lock_});
  EXPECT_EQ(o.out, dir_ + "\n");
}

TEST_F(CliTest, ConflictExits75AndNamesTheHolder) {
  Holder h = hold(lock_, {"--data-dir", "/srv/data"});
  std::string marker = dir_ + "/ran";
  Outcome o = pl({"run", lock_, "--", "touch", marker});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_FALSE(exists(marker)) << "COMMAND must not run without the lock";
  EXPECT_THAT(o.err, HasSubstr(std::to_string(h.command)));  // pid
  EXPECT_THAT(o.err, HasSubstr("/srv/data"));                // data directory
  EXPECT_THAT(o.err, HasSubstr("status running"));           // status
  EXPECT_THAT(o.err, HasSubstr("started 20"));               // start time
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_THAT(o.err, HasSubstr(std::string("host ") + host));
  EXPECT_EQ(o.out, "");

  o = pl({"run", "--conflict-exit-code", "9", lock_, "--", "touch", marker});
  EXPECT_EXIT_CODE(o, 9);
  EXPECT_THAT(o.err, HasSubstr(std::to_string(h.command)));
  EXPECT_EXIT_CODE(pl({"run", "--conflict-exit-code=0", lock_, "--", "touch", marker}), 0);
  EXPECT_FALSE(exists(marker));
  // The holder was not disturbed.
  EXPECT_TRUE(h.pidlock->running());
  EXPECT_EQ(status_json(lock_)["pid"].get<double>(), h.command);
}

TEST_F(CliTest, RunTimeoutGivesUpAfterTheTimeout) {
  Holder h = hold(lock_);
  Outcome o = pl({"run", "--timeout", "0.2", lock_, "--", "true"});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_GE(o.elapsed.count(), 0.19);
  EXPECT_LT(o.elapsed.count(), 5.0);
  EXPECT_THAT(o.err, HasSubstr("timed out"));
  EXPECT_THAT(o.err, HasSubstr(std::to_string(h.command)));
  EXPECT_EXIT_CODE(pl({"run", "--timeout", "0.1", "--conflict-exit-code", "5", lock_, "--", "true"}), 5);
}

TEST_F(CliTest, RunWaitTakesTheLockOnceTheHolderExits) {
  Holder h = hold(lock_);
  std::string marker = dir_ + "/second";
  auto waiter = start({"run", "--wait", lock_, "--", "/bin/sh", "-c", "echo $$ > '" + marker + "'"});
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(waiter->running());
  EXPECT_FALSE(exists(marker));
  kill(h.command, SIGTERM);
  EXPECT_EXIT_CODE(h.pidlock->finish(), 128 + SIGTERM);
  Outcome o = waiter->finish(5000ms);
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_TRUE(exists(marker));
  EXPECT_FALSE(exists(lock_));
}

TEST_F(CliTest, RunWithATimeoutTakesTheLockWhenItIsReleasedInTime) {
  Holder h = hold(lock_);
  auto waiter = start({"run", "--timeout", "10", lock_, "--", "true"});
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(waiter->running());
  kill(h.command, SIGTERM);
  Outcome o = waiter->finish(5000ms);
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_LT(o.elapsed.count(), 5.0);
}

TEST_F(CliTest, CommandKilledWhilePidlockLivesFreesTheLock) {
  Holder h = hold(lock_);
  kill(h.command, SIGKILL);
  EXPECT_EXIT_CODE(h.pidlock->finish(), 128 + SIGKILL);
  EXPECT_FALSE(exists(lock_));
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "true"}), 0);
}

TEST_F(CliTest, PidlockKilledLeavesTheLockHeldByTheCommandThenStale) {
  Holder h = hold(lock_);
  h.pidlock->kill(SIGKILL);
  Outcome killed = h.pidlock->finish();
  EXPECT_EQ(killed.signal, SIGKILL);

  // COMMAND still runs, and still holds the lock through its descriptor.
  int code = -1;
  Json j = status_json(lock_, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["state"].get<std::string>(), "held");
  EXPECT_EQ(j["pid"].get<double>(), h.command);
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "true"}), kHeld);
  EXPECT_EXIT_CODE(pl({"break", lock_}), kHeld);
  EXPECT_TRUE(exists(lock_));

  // Once COMMAND is gone the lock is stale, and the next run takes over.
  kill_orphan(h.command);
  j = status_json(lock_, &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["state"].get<std::string>(), "stale");
  EXPECT_EQ(j["reason"].get<std::string>(), "kernel-lock-free");
  EXPECT_EQ(j["pid"].get<double>(), h.command);
  Outcome o = pl({"run", lock_, "--", "sed", "-n", "1p", lock_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_NE(o.out, std::to_string(h.command) + "\n");
  EXPECT_FALSE(exists(lock_));
  EXPECT_EQ(pl({"status", lock_}).code, 3);
}

TEST_F(CliTest, RunTakesOverAStaleLock) {
  make_stale(lock_);
  EXPECT_EQ(pl({"status", lock_}).code, 1);
  Outcome o = pl({"run", "--verbose", lock_, "--", "true"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_FALSE(exists(lock_));
  // --verbose installs the library's log handler: the take-over is a
  // warning on stderr. Without it the library says nothing at all.
  EXPECT_NE(o.err.find("pidlock: [warning] acquired lock file"), std::string::npos) << o.err;
  make_stale(lock_);
  Outcome quiet = pl({"run", lock_, "--", "true"});
  EXPECT_EXIT_CODE(quiet, 0);
  EXPECT_EQ(quiet.err, "");
}

// The descriptors a program started with pidlock_test_holder's list-fds
// reported: number -> the line's rest ("" or the lock path).
std::map<int, std::string> descriptors(const std::string& listing) {
  std::map<int, std::string> out;
  std::size_t start = 0;
  while (start < listing.size()) {
    std::size_t end = listing.find('\n', start);
    if (end == std::string::npos) end = listing.size();
    std::string line = listing.substr(start, end - start);
    std::size_t space = line.find(' ');
    out[std::atoi(line.c_str())] = space == std::string::npos ? "" : line.substr(space + 1);
    start = end + 1;
  }
  return out;
}

TEST_F(CliTest, TheCommandInheritsTheLockDescriptorAndNothingElse) {
  // COMMAND inherits the lock's descriptor (that is what keeps the lock
  // alive without pidlock) besides what it would inherit anyway: whatever
  // the test's own runner (ctest, a CI agent, a shell) left open without
  // close-on-exec reaches a program started without pidlock too. COMMAND
  // lists its descriptors itself: a shell's `ls /proc/$$/fd | ...` sees
  // its own pipeline's pipes come and go, at random.
  const std::vector<std::string> list{holder_program(), "list-fds", lock_};
  Outcome plain = Child::spawn(list, Stdio::captured_in(dir_)).finish();
  ASSERT_EXIT_CODE(plain, 0);
  std::vector<std::string> args{"run", lock_, "--"};
  args.insert(args.end(), list.begin(), list.end());
  Outcome o = pl(args);
  ASSERT_EXIT_CODE(o, 0);
  std::map<int, std::string> without = descriptors(plain.out), with = descriptors(o.out);
  std::vector<int> extra;
  for (const auto& [fd, what] : with) {
    if (without.count(fd) == 0) extra.push_back(fd);
  }
  for (const auto& [fd, what] : without) EXPECT_EQ(with.count(fd), 1u) << "descriptor " << fd << " went missing";
  ASSERT_EQ(extra.size(), 1u) << "with pidlock:\n" << o.out << "without:\n" << plain.out;
  EXPECT_EQ(with[extra[0]], lock_) << "the one descriptor added is not the lock file's";
  EXPECT_GT(extra[0], 2) << "the lock's descriptor is a standard one";
}

// A lock lives as long as any process that inherited it: a job's
// background child keeps the descriptor `run` passed on, so when the job
// exits the file and the lock stay, status names the process that keeps
// it, the next run is refused, and once the child is gone the next run
// takes the file over as released, not as a crash.
// A job that starts `sleep 30` in the background, writes its pid to
// `child_file` once it is `sleep` (has exec'd, so that the names tests see
// are the child's own), and exits.
std::vector<std::string> job_leaving_a_background_sleep(const std::string& child_file) {
  return {"/bin/sh", "-c",
          "sleep 30 & while [ \"$(cat /proc/$!/comm)\" != sleep ]; do :; done; echo $! > '" + child_file +
              "'; exit 0"};
}

TEST_F(CliTest, ABackgroundChildOfTheJobKeepsTheLockUntilItExits) {
  const std::string child_file = dir_ + "/background.pid";
  std::vector<std::string> argv = {"run", lock_, "--"};
  for (const std::string& a : job_leaving_a_background_sleep(child_file)) argv.push_back(a);
  Outcome o = pl(argv);
  EXPECT_EXIT_CODE(o, 0);
  const pid_t background = static_cast<pid_t>(std::atol(read_file(child_file).c_str()));
  ASSERT_GT(background, 0);
  commands_.push_back(background);  // killed at the end if the test fails early
  const std::string named = "pid " + std::to_string(background) + " (sleep)";
  EXPECT_THAT(o.err, HasSubstr("stays held by " + named));

  ASSERT_TRUE(exists(lock_)) << "the job's child still holds the lock";
  EXPECT_TRUE(kernel_lock_held(lock_));
  int code = -1;
  Json j = status_json(lock_, &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(j["state"], "held");
  EXPECT_EQ(j["reason"], "kernel-lock-held");
  EXPECT_THAT(j["detail"].get<std::string>(), HasSubstr("does not exist")) << "the recorded pid (the job) is gone";
  ASSERT_TRUE(j["kernel_lock_holders"].is_array()) << j;
  ASSERT_EQ(j["kernel_lock_holders"].size(), 1u) << j;
  EXPECT_EQ(j["kernel_lock_holders"][0]["pid"], background);
  EXPECT_EQ(j["kernel_lock_holders"][0]["command"], "sleep");
  Outcome human = pl({"status", lock_});
  EXPECT_EXIT_CODE(human, 0);
  EXPECT_THAT(human.out, HasSubstr("kernel lock held by:  " + named));
  EXPECT_THAT(human.out, HasSubstr("inherited the lock"));

  const std::string marker = dir_ + "/ran";
  o = pl({"run", lock_, "--", "touch", marker});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_FALSE(exists(marker)) << "a second job ran beside the first one's child";
  EXPECT_THAT(o.err, HasSubstr(named + ", which inherited the lock"));

  kill_orphan(background);
  o = pl({"run", "--verbose", lock_, "--", "touch", marker});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_TRUE(exists(marker));
  EXPECT_THAT(o.err, Not(HasSubstr("taking over a stale lock"))) << "the job released it; it did not crash";
  EXPECT_FALSE(exists(lock_));
}

// A waiter that gets the lock from a finished job inherited nothing: the
// job's run must not name it as a process that keeps the lock (the file it
// locks is the same one, handed over in place, or a new one that may reuse
// the inode number).
TEST_F(CliTest, AWaiterThatGetsTheLockIsNotCalledAnInheritor) {
  for (int round = 0; round < 5; ++round) {
    std::unique_ptr<Child> holder = start({"run", lock_, "--", "sleep", "0.3"});
    for (int i = 0; i < 200 && !exists(lock_); ++i) std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(exists(lock_));
    std::unique_ptr<Child> waiter = start({"run", "-w", "30", lock_, "--", "sleep", "0.2"});
    Outcome first = holder->finish();
    Outcome second = waiter->finish();
    EXPECT_EXIT_CODE(first, 0);
    EXPECT_EXIT_CODE(second, 0);
    EXPECT_THAT(first.err, Not(HasSubstr("stays held"))) << "round " << round;
    EXPECT_THAT(second.err, Not(HasSubstr("stays held"))) << "round " << round;
    EXPECT_FALSE(exists(lock_));
  }
}

// A run that waited for the lock holds it through the description it
// announced itself with as a waiter: a background child of its job that
// inherits that description is still named as keeping the lock.
TEST_F(CliTest, AWaitingRunsBackgroundChildIsNamedAsKeepingTheLock) {
  const std::string child_file = dir_ + "/background.pid";
  std::unique_ptr<Child> holder = start({"run", lock_, "--", "sleep", "0.3"});
  for (int i = 0; i < 200 && !exists(lock_); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(exists(lock_));
  std::vector<std::string> argv = {"run", "-w", "30", lock_, "--"};
  for (const std::string& a : job_leaving_a_background_sleep(child_file)) argv.push_back(a);
  std::unique_ptr<Child> waiter = start(argv);
  EXPECT_EXIT_CODE(holder->finish(), 0);
  Outcome o = waiter->finish();
  EXPECT_EXIT_CODE(o, 0);
  const pid_t background = static_cast<pid_t>(std::atol(read_file(child_file).c_str()));
  ASSERT_GT(background, 0);
  commands_.push_back(background);
  EXPECT_THAT(o.err, HasSubstr("stays held by pid " + std::to_string(background) + " (sleep)"));
  EXPECT_TRUE(kernel_lock_held(lock_));
  kill_orphan(background);
}

TEST_F(CliTest, AJobWithoutBackgroundChildrenLeavesNothingBehind) {
  // The same job with its child waited for: nothing stays, nothing is said.
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "sleep 0.1 & wait"});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_EQ(o.err, "");
  EXPECT_FALSE(exists(lock_));
}

// ---------------------------------------------------------------- signals

class SignalForwardingTest : public CliTest, public ::testing::WithParamInterface<int> {};

TEST_P(SignalForwardingTest, ReachesTheCommand) {
  const int signal = GetParam();
  std::string ready = dir_ + "/ready", got = dir_ + "/got";
  // The trap kills the background sleep with SIGKILL and waits for it: a
  // catchable signal could land in the sleep's shell child before its exec
  // and be lost, and a sleep still running when the job exits keeps the
  // lock (it inherited the descriptor).
  std::string script =
      "trap 'echo TERM > " + got + "; kill -KILL $!; wait $!; exit 7' TERM; "
      "trap 'echo INT > " + got + "; kill -KILL $!; wait $!; exit 7' INT; "
      "trap 'echo HUP > " + got + "; kill -KILL $!; wait $!; exit 7' HUP; "
      "sleep 30 & echo ready > " + ready + "; wait $!";
  auto p = start({"run", lock_, "--", "/bin/sh", "-c", script});
  ASSERT_TRUE(eventually([&] { return exists(ready); }));
  p->kill(signal);
  Outcome o = p->finish(5000ms);
  EXPECT_EXIT_CODE(o, 7);  // pidlock survived the signal and reports COMMAND's status
  const char* name = signal == SIGTERM ? "TERM\n" : signal == SIGINT ? "INT\n" : "HUP\n";
  EXPECT_EQ(read_file(got), name);
  EXPECT_FALSE(exists(lock_));
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalForwardingTest, ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == SIGTERM ? "SIGTERM" : info.param == SIGINT ? "SIGINT" : "SIGHUP";
                         });

TEST_F(CliTest, ASignalWhileWaitingEndsTheWaitWithoutRunningTheCommand) {
  Holder h = hold(lock_);
  std::string marker = dir_ + "/ran";
  auto waiter = start({"run", "--wait", lock_, "--", "touch", marker});
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(waiter->running());
  waiter->kill(SIGTERM);
  Outcome o = waiter->finish(5000ms);
  EXPECT_FALSE(o.exited);
  EXPECT_EQ(o.signal, SIGTERM);
  EXPECT_FALSE(exists(marker));
  EXPECT_EQ(status_json(lock_)["pid"].get<double>(), h.command);
}

// ------------------------------------------------------- hostile start-up

// Runs pidlock with `args` in a forked child that first calls `prepare`
// (close descriptors, make a process group, ...); returns its pid.
pid_t start_raw(const std::vector<std::string>& args, const std::function<void()>& prepare) {
  std::vector<std::string> argv{pidlock_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (std::string& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    prepare();
    execv(raw[0], raw.data());
    _exit(126);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = -1;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// A pipe whose read end is closed: writing to it raises SIGPIPE.
int broken_pipe() {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  close(fds[0]);
  return fds[1];
}

TEST_F(CliTest, StartedWithClosedStandardDescriptorsTheLockIsNeverOneOfThem) {
  // The job writes to its stdout and stderr, lists its descriptors, and
  // copies the record while it holds the lock. Were the lock's descriptor
  // 0, 1 or 2, the job's messages would overwrite the record.
  const std::string fds = dir_ + "/fds", copy = dir_ + "/record";
  const std::string job = "echo garbage; echo garbage >&2; '" + std::string(holder_program()) + "' list-fds '" +
                          lock_ + "' > '" + fds + "'; cat '" + lock_ + "' > '" + copy + "'";
  for (const std::vector<int>& closed : std::vector<std::vector<int>>{{0, 1, 2}, {1, 2}, {2}, {0}}) {
    SCOPED_TRACE("closed: " + std::to_string(closed.size()) + " descriptors from " + std::to_string(closed[0]));
    pid_t p = start_raw({"run", lock_, "--", "/bin/sh", "-c", job}, [&] {
      int null = open("/dev/null", O_RDWR);  // the garbage goes nowhere
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      close(null);
      for (int fd : closed) close(fd);
    });
    int status = wait_status(p);
    EXPECT_EQ(exit_code(status), 0) << describe_status(status);
    const std::string listing = read_file(fds);
    EXPECT_THAT(listing, HasSubstr(" " + lock_)) << "the job did not inherit the lock";
    for (const char* standard : {"0 ", "1 ", "2 "})
      EXPECT_THAT(listing, Not(HasSubstr(std::string("\n") + standard + lock_))) << listing;
    EXPECT_NE(listing.rfind("0 " + lock_, 0), 0u) << listing;
    const std::string record = read_file(copy);
    EXPECT_THAT(record, HasSubstr("pidlock-format=")) << record;
    EXPECT_THAT(record, Not(HasSubstr("garbage"))) << record;
    EXPECT_FALSE(exists(lock_));
  }
}

TEST_F(CliTest, AClosedPipeDoesNotKillPidlock) {
  // pidlock's messages go to a pipe nobody reads: the write fails, and
  // pidlock still exits with the status it means, not of SIGPIPE.
  Holder h = hold(lock_);
  const int pipe_end = broken_pipe();
  ASSERT_GE(pipe_end, 0);
  auto with_broken = [&](int target) {
    return [&, target] {
      dup2(pipe_end, target);
      close(pipe_end);
    };
  };
  int status = wait_status(start_raw({"run", lock_, "--", "true"}, with_broken(STDERR_FILENO)));
  EXPECT_EQ(exit_code(status), kHeld) << describe_status(status);  // the conflict message
  status = wait_status(start_raw({"run", dir_ + "/other.lock", "--", "pidlock-test-no-such-command"},
                                 with_broken(STDERR_FILENO)));
  EXPECT_EQ(exit_code(status), 127) << describe_status(status);
  status = wait_status(start_raw({"status", lock_}, with_broken(STDOUT_FILENO)));
  EXPECT_EQ(exit_code(status), 0) << describe_status(status);
  close(pipe_end);
  EXPECT_FALSE(exists(dir_ + "/other.lock"));
}

TEST_F(CliTest, TheJobGetsSigpipeAsPidlockFoundIt) {
  // pidlock ignores SIGPIPE for itself only: a job writing to a closed pipe
  // dies of it, as it would without pidlock.
  Outcome o = pl({"run", lock_, "--", "/bin/sh", "-c", "grep SigIgn /proc/self/status"});
  EXPECT_EXIT_CODE(o, 0);
  const unsigned long long ignored = std::strtoull(o.out.c_str() + o.out.find(':') + 1, nullptr, 16);
  EXPECT_EQ(ignored & (1ull << (SIGPIPE - 1)), 0u) << o.out;
}

TEST_F(CliTest, ASignalToTheWholeProcessGroupReachesTheJobOnce) {
  // pidlock in a process group of its own, as a shell or a supervisor
  // starts a job; SIGTERM sent to that whole group.
  const std::string out = dir_ + "/signals";
  pid_t p = start_raw({"run", lock_, "--", holder_program(), "count-signals"}, [&] {
    setpgid(0, 0);
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
  });
  ASSERT_GT(p, 0);
  ASSERT_TRUE(eventually([&] { return try_read_file(out).value_or("").find("ready ") != std::string::npos; }));
  const pid_t job = static_cast<pid_t>(std::atol(read_file(out).c_str() + 6));
  ASSERT_GT(job, 0);
  commands_.push_back(job);
  ASSERT_EQ(kill(-p, SIGTERM), 0);
  // pidlock forwards the signal it got; once that copy has arrived,
  // anything the group signal delivered to the job directly has too (it
  // was queued before kill() returned).
  const std::string forwarded = "Terminated from " + std::to_string(p) + "\n";
  EXPECT_TRUE(eventually([&] { return read_file(out).find(forwarded) != std::string::npos; }))
      << "pidlock did not forward the signal: " << read_file(out);
  kill(job, SIGUSR1);
  int status = wait_status(p);
  EXPECT_EQ(exit_code(status), 0) << describe_status(status);
  const std::string seen = read_file(out);
  EXPECT_THAT(seen, Not(HasSubstr("Terminated from " + std::to_string(getpid()))))
      << "the group signal reached the job directly, besides pidlock's copy";
  size_t count = 0;
  for (size_t at = seen.find("Terminated from"); at != std::string::npos; at = seen.find("Terminated from", at + 1))
    ++count;
  EXPECT_EQ(count, 1u) << seen;
}

// The job's pid the moment pidlock `p` has forked it (0 if it never does):
// /proc is read without a pause, to see the job as early as possible.
pid_t job_of(pid_t p) {
  const std::string children = "/proc/" + std::to_string(p) + "/task/" + std::to_string(p) + "/children";
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[32] = {};
    int fd = open(children.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;  // pidlock is gone
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) return static_cast<pid_t>(std::atol(buf));
  }
  return 0;
}

// Sends SIGSTOP and waits until /proc shows the process stopped.
bool stop(pid_t pid) {
  kill(pid, SIGSTOP);
  return eventually([&] { return proc_state(pid) == 'T'; });
}

// Wherever the job dies during start-up -- before its exec (pidlock then
// writes to the start-up pipe of a dead process: no SIGPIPE may kill it),
// as it execs, at its first instruction -- pidlock reports 128+N and the
// next run gets the lock. Both are stopped the moment the test sees the
// job, a little later each round, and the job is killed there.
TEST_F(CliTest, AJobKilledAtAnyMomentOfStartUpExits128PlusNAndTheNextRunGetsTheLock) {
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "/bin/sh", "-c", "kill -KILL $$"}), 128 + SIGKILL);
  EXPECT_EXIT_CODE(pl({"run", lock_, "--", "true"}), 0);
  int before_exec = 0, rounds = 0;
  // At least 12 rounds; more (up to 30) until two hit the moment before
  // the exec, which is short.
  for (; rounds < 12 || (before_exec < 2 && rounds < 30); ++rounds) {
    SCOPED_TRACE("round " + std::to_string(rounds));
    auto p = start({"run", lock_, "--", "sleep", "30"});
    const pid_t job = job_of(p->pid());
    ASSERT_GT(job, 0);
    for (int spin = 0; spin < (rounds % 4) * 20; ++spin) sched_yield();  // a later moment
    ASSERT_TRUE(stop(p->pid()));
    ASSERT_TRUE(stop(job));
    char exe[PATH_MAX] = {};
    ssize_t n = readlink(("/proc/" + std::to_string(job) + "/exe").c_str(), exe, sizeof exe - 1);
    if (n > 0 && std::string(exe, static_cast<std::size_t>(n)) == pidlock_path()) ++before_exec;
    kill(job, SIGKILL);
    kill(p->pid(), SIGCONT);
    EXPECT_EXIT_CODE(p->finish(), 128 + SIGKILL);
    EXPECT_EXIT_CODE(pl({"run", lock_, "--", "true"}), 0);
    EXPECT_FALSE(exists(lock_));
  }
  // How many rounds hit the job before its exec varies with the machine's
  // load (a few in 25 here); it is reported, not required. A closed pipe's
  // SIGPIPE, which is what killed pidlock in that moment, is proven
  // harmless deterministically by AClosedPipeDoesNotKillPidlock.
  std::printf("the job was killed before its exec in %d of %d rounds\n", before_exec, rounds);
}

TEST_F(CliTest, PidlockAndItsJobKilledDuringStartUpLeaveAStaleLockTheNextRunTakesOver) {
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto p = start({"run", lock_, "--", "sleep", "30"});
    const pid_t job = job_of(p->pid());
    ASSERT_GT(job, 0);
    for (int spin = 0; spin < round * 50; ++spin) sched_yield();
    p->kill(SIGKILL);
    p->finish();
    kill_orphan(job);  // SIGKILL and reap: the lock is free once it is gone
    EXPECT_EXIT_CODE(pl({"run", lock_, "--", "true"}), 0);
    EXPECT_FALSE(exists(lock_));
  }
}

// ----------------------------------------------------------------- status

TEST_F(CliTest, StatusOfAMissingFileIsFree) {
  Outcome o = pl({"status", lock_});
  EXPECT_EXIT_CODE(o, 3);
  EXPECT_THAT(o.out, HasSubstr("free"));
  int code = -1;
  Json j = status_json(lock_, &code);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(j["state"].get<std::string>(), "free");
  EXPECT_EQ(j["reason"].get<std::string>(), "no-lock-file");
  EXPECT_TRUE(j["pid"].is_null());
  EXPECT_TRUE(j["format"].is_null());
  for (const char* key : {"state", "reason", "detail", "pid", "start_time", "data_dir", "host", "status",
                          "format", "port", "socket_dir", "boot_id", "kernel_lock_evidence"})
    EXPECT_TRUE(j.contains(key)) << key;
}

TEST_F(CliTest, StatusOfAStaleLockExits1) {
  make_stale(lock_);
  Outcome o = pl({"status", lock_});
  EXPECT_EXIT_CODE(o, 1);
  EXPECT_THAT(o.out, HasSubstr("stale"));
  EXPECT_TRUE(exists(lock_)) << "status must never change anything";
}

TEST_F(CliTest, StatusOfAPlainPidFile) {
  std::string pid_file = dir_ + "/daemon.pid";
  write_file(pid_file, std::to_string(getpid()) + "\n");
  int code = -1;
  Json j = status_json(pid_file, &code);
  EXPECT_EQ(j["format"].get<std::string>(), "pidfile");
  EXPECT_EQ(j["pid"].get<double>(), getpid());
  EXPECT_EQ(code, j["state"].get<std::string>() == "held" ? 0 : 4) << j["detail"];
}

TEST_F(CliTest, StatusOfSomethingThatIsNotALockFileIsUnknown) {
  std::string target = dir_ + "/target";
  write_file(target, "1\n");
  std::string link = dir_ + "/link.lock";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  Outcome o = pl({"status", link});
  EXPECT_EXIT_CODE(o, 4);
  EXPECT_THAT(o.err, HasSubstr("symbolic link"));
  int code = -1;
  Json j = status_json(link, &code);
  EXPECT_EQ(code, 4);
  EXPECT_EQ(j["state"].get<std::string>(), "unknown");
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("symbolic link"));
  EXPECT_EXIT_CODE(pl({"status", dir_}), 4);  // a directory
}

TEST_F(CliTest, StatusJsonEscapesEveryByte) {
  // A PostgreSQL socket lock file (5 lines) of a dead server whose data
  // directory holds a quote, a backslash, a tab and a byte that is not
  // UTF-8: the JSON must still parse, with U+FFFD for that byte.
  Child gone = Child::spawn({"true"}, Stdio::captured_in(dir_));
  pid_t dead = gone.pid();
  gone.finish();
  std::string lock = dir_ + "/.s.PGSQL.5432.lock";
  write_file(lock, std::to_string(dead) + "\n/srv/\xff\"q\\b\tz\n" + std::to_string(time(nullptr)) +
                       "\n5432\n/tmp\n");
  int code = -1;
  Outcome raw = pl({"status", "--json", lock});
  Json j = status_json(lock, &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["state"].get<std::string>(), "stale");
  EXPECT_EQ(j["format"].get<std::string>(), "postgresql");
  EXPECT_EQ(j["data_dir"].get<std::string>(), "/srv/\xEF\xBF\xBD\"q\\b\tz");
  EXPECT_EQ(j["port"].get<double>(), 5432);
  EXPECT_EQ(j["socket_dir"].get<std::string>(), "/tmp");
  EXPECT_EQ(raw.out.find('\xff'), std::string::npos);
  EXPECT_EQ(raw.out.find('\t'), std::string::npos);
  EXPECT_EQ(raw.out.back(), '\n');
  EXPECT_EQ(std::count(raw.out.begin(), raw.out.end(), '\n'), 1) << "one JSON object, one line";
}

// -------------------------------------------------------------- PostgreSQL

std::string postmaster_pid(pid_t pid, const std::string& data_dir) {
  return std::to_string(pid) + "\n" + data_dir + "\n" + std::to_string(time(nullptr)) +
         "\n5433\n/var/run/postgresql\nlocalhost\n  5433001    32768\nready   \n";
}

TEST_F(CliTest, PostgresqlPostmasterPidOfALiveServerIsHeld) {
  Child server = Child::spawn({"sleep", "30"}, Stdio::captured_in(dir_));
  std::string lock = dir_ + "/postmaster.pid";
  write_file(lock, postmaster_pid(server.pid(), dir_));
  int code = -1;
  Json j = status_json(lock, &code);
  EXPECT_EQ(code, 0) << j["detail"];
  EXPECT_EQ(j["state"].get<std::string>(), "held");
  EXPECT_EQ(j["format"].get<std::string>(), "postgresql");
  EXPECT_EQ(j["pid"].get<double>(), server.pid());
  EXPECT_EQ(j["port"].get<double>(), 5433);
  EXPECT_EQ(j["socket_dir"].get<std::string>(), "/var/run/postgresql");
  EXPECT_EQ(j["data_dir"].get<std::string>(), dir_);
  EXPECT_EQ(j["status"].get<std::string>().substr(0, 5), "ready");
  Outcome human = pl({"status", lock});
  EXPECT_EXIT_CODE(human, 0);
  EXPECT_THAT(human.out, HasSubstr("5433"));

  EXPECT_EXIT_CODE(pl({"break", lock}), kHeld);
  EXPECT_TRUE(exists(lock));
  EXPECT_EXIT_CODE(pl({"run", lock, "--", "true"}), kHeld);
}

TEST_F(CliTest, PostgresqlPostmasterPidOfADeadServerIsStaleAndBreakRemovesIt) {
  Child server = Child::spawn({"true"}, Stdio::captured_in(dir_));
  pid_t dead = server.pid();
  server.finish();
  std::string lock = dir_ + "/postmaster.pid";
  write_file(lock, postmaster_pid(dead, dir_));
  int code = -1;
  Json j = status_json(lock, &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["state"].get<std::string>(), "stale");
  EXPECT_EQ(j["reason"].get<std::string>(), "pid-dead");
  EXPECT_EQ(j["format"].get<std::string>(), "postgresql");
  Outcome o = pl({"break", lock});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_THAT(o.out, HasSubstr("removed"));
  EXPECT_THAT(o.out, HasSubstr(std::to_string(dead)));
  EXPECT_FALSE(exists(lock));
}

TEST_F(CliTest, PostgresqlRecordOfAZombieIsStale) {
  // A dead child this test has not reaped: kill(pid, 0) still succeeds.
  pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  std::string lock = dir_ + "/postmaster.pid";
  ASSERT_TRUE(eventually([&] {
    std::string stat = read_file("/proc/" + std::to_string(zombie) + "/stat");
    return stat.find(") Z ") != std::string::npos;
  }));
  write_file(lock, postmaster_pid(zombie, dir_));
  int code = -1;
  Json j = status_json(lock, &code);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(j["reason"].get<std::string>(), "zombie");
  int status;
  waitpid(zombie, &status, 0);
}

// ------------------------------------------------------------------ break

TEST_F(CliTest, BreakRefusesAHeldLock) {
  Holder h = hold(lock_);
  Outcome o = pl({"break", lock_});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_THAT(o.err, HasSubstr(std::to_string(h.command)));
  EXPECT_TRUE(exists(lock_));
  EXPECT_TRUE(h.pidlock->running());
}

TEST_F(CliTest, BreakRemovesAStaleLock) {
  make_stale(lock_);
  Outcome o = pl({"break", lock_});
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_THAT(o.out, HasSubstr("removed stale lock file"));
  EXPECT_FALSE(exists(lock_));
  o = pl({"break", lock_});  // now free
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_THAT(o.out, HasSubstr("nothing to remove"));
}

TEST_F(CliTest, BreakNeverRemovesWhatIsNotALockFile) {
  std::string target = dir_ + "/precious";
  write_file(target, "0\n");  // a stale-looking pid file: pid 0 is no holder
  std::string link = dir_ + "/link.lock";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  Outcome o = pl({"break", link});
  EXPECT_EXIT_CODE(o, kSoftware);
  EXPECT_THAT(o.err, HasSubstr("symbolic link"));
  EXPECT_TRUE(exists(link));
  EXPECT_TRUE(exists(target));

  std::string folder = dir_ + "/folder.lock";
  ASSERT_EQ(mkdir(folder.c_str(), 0700), 0);
  EXPECT_EXIT_CODE(pl({"break", folder}), kSoftware);
  EXPECT_TRUE(exists(folder));

  std::string fifo = dir_ + "/fifo.lock";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EXIT_CODE(pl({"break", fifo}), kSoftware);
  EXPECT_TRUE(exists(fifo));

  std::string linked = dir_ + "/linked.lock";
  ASSERT_EQ(::link(target.c_str(), linked.c_str()), 0);
  o = pl({"break", linked});
  EXPECT_EXIT_CODE(o, kSoftware);
  EXPECT_THAT(o.err, HasSubstr("hard link"));
  EXPECT_TRUE(exists(linked));
}

TEST_F(CliTest, FailuresNameThePathAndMapToExitCodes) {
  // A missing folder: the lock file cannot be created (EX_CANTCREAT, 73).
  std::string nowhere = dir_ + "/no/such/folder/job.lock";
  Outcome o = pl({"run", nowhere, "--", "true"});
  EXPECT_EXIT_CODE(o, 73);
  EXPECT_THAT(o.err, HasSubstr(dir_ + "/no/such/folder"));
  if (geteuid() != 0) {  // root ignores permissions
    std::string locked = dir_ + "/locked";
    ASSERT_EQ(mkdir(locked.c_str(), 0500), 0);
    o = pl({"run", locked + "/job.lock", "--", "true"});
    EXPECT_EXIT_CODE(o, 77);
    EXPECT_THAT(o.err, HasSubstr("Permission denied"));
  }
}

TEST_F(CliTest, RunOnAReadOnlyFileSystemExits74NamingThePathAndRunsNothing) {
  // A real read-only mount: a forked child enters a mount namespace of its
  // own (nothing leaks out), mounts a tmpfs, leaves a stale PostgreSQL
  // record of a dead pid on it, remounts it read-only and runs pidlock
  // there. It writes what it saw to `report`, outside the mount. Needs
  // CAP_SYS_ADMIN; skipped, saying so, without it.
  const std::string mount_point = dir_ + "/ro";
  ASSERT_EQ(mkdir(mount_point.c_str(), 0700), 0);
  const std::string lock = mount_point + "/postmaster.pid";
  const std::string ran = dir_ + "/ran";
  const std::string report = dir_ + "/report";
  Child server = Child::spawn({"true"}, Stdio::captured_in(dir_));
  const pid_t dead = server.pid();
  server.finish();
  const std::string record = postmaster_pid(dead, mount_point);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string out;
    auto failed = [](const char* what) {
      const int err = errno;
      return std::string(err == EPERM ? "skip " : "error ") + what + ": " + strerror(err) + "\n";
    };
    try {
      if (unshare(CLONE_NEWNS) != 0) {
        out = failed("unshare(CLONE_NEWNS)");
      } else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                 mount("pidlock-cli-test", mount_point.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
        out = failed("mount");
      } else {
        write_file(lock, record);
        if (mount(nullptr, mount_point.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
          out = failed("remount read-only");
        } else {
          Outcome run = pidlock({"run", lock, "--", "touch", ran}, dir_);
          Outcome status = pidlock({"status", lock}, dir_);
          out = "run " + std::to_string(run.exited ? run.code : -1) + "\nstatus " +
                std::to_string(status.exited ? status.code : -1) + "\n" +
                (read_file(lock) == record ? "unchanged" : "changed") + "\n" + run.err;
        }
      }
    } catch (const std::exception& e) {
      out = std::string("error ") + e.what() + "\n";
    }
    write_file(report, out);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string seen = read_file(report);
  if (seen.rfind("skip ", 0) == 0)
    GTEST_SKIP() << "no CAP_SYS_ADMIN for a mount namespace here: " << seen.substr(5, seen.find('\n') - 5);
  EXPECT_EQ(seen.rfind("run 74\nstatus 1\nunchanged\n", 0), 0u) << seen;
  EXPECT_THAT(seen, HasSubstr("\"" + lock + "\": Read-only file system")) << "the error names the path";
  EXPECT_FALSE(exists(ran)) << "COMMAND must not run without the lock";
  EXPECT_FALSE(exists(lock)) << "the mount stayed inside the child's namespace";
}

// ------------------------------------------------------------------- wait

TEST_F(CliTest, WaitOnAFreeOrStaleLockReturnsAtOnce) {
  EXPECT_EXIT_CODE(pl({"wait", lock_}, 3000ms), 0);
  make_stale(lock_);
  EXPECT_EXIT_CODE(pl({"wait", lock_}, 3000ms), 0);
  EXPECT_TRUE(exists(lock_)) << "wait never takes or removes the lock";
}

TEST_F(CliTest, WaitTimesOutOnAHeldLock) {
  Holder h = hold(lock_);
  Outcome o = pl({"wait", "--timeout", "0.3", lock_});
  EXPECT_EXIT_CODE(o, kHeld);
  EXPECT_GE(o.elapsed.count(), 0.29);
  EXPECT_LT(o.elapsed.count(), 5.0);
  EXPECT_THAT(o.err, HasSubstr("timed out"));
  EXPECT_THAT(o.err, HasSubstr(std::to_string(h.command)));
}

TEST_F(CliTest, WaitReturnsWhenTheHolderExits) {
  Holder h = hold(lock_);
  auto waiter = start({"wait", lock_});
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(waiter->running());
  auto released = std::chrono::steady_clock::now();
  kill(h.command, SIGTERM);
  Outcome o = waiter->finish(5000ms);
  EXPECT_EXIT_CODE(o, 0);
  std::chrono::duration<double> after = std::chrono::steady_clock::now() - released;
  EXPECT_LT(after.count(), 3.0);
}

TEST_F(CliTest, WaitReturnsWhenAKilledHoldersLockBecomesStale) {
  Holder h = hold(lock_);
  h.pidlock->kill(SIGKILL);
  h.pidlock->finish();
  auto waiter = start({"wait", "--timeout", "10", lock_});
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(waiter->running());
  kill_orphan(h.command);
  Outcome o = waiter->finish(5000ms);
  EXPECT_EXIT_CODE(o, 0);
  EXPECT_LT(o.elapsed.count(), 5.0);
  EXPECT_TRUE(exists(lock_));
}

}  // namespace
}  // namespace cli_test
