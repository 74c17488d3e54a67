// Helpers of the recognition tests: what a file looked like
// (to prove it unchanged), children with a chosen pid, descendants of a
// process, and the pidlock program run as a user runs it.
#ifndef PIDLOCK_TESTS_RECOGNISE_RECOGNISE_SUPPORT_HPP
#define PIDLOCK_TESTS_RECOGNISE_RECOGNISE_SUPPORT_HPP

#include "support/test_support.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace pidlock_recognise {

using namespace pidlock_test;

// Everything about a file that writing, truncating, chmod, chown, touch,
// rename or removal would change.
struct FileFacts {
  bool exists = false;
  std::string head;  // the first 64 KiB
  struct stat st {};
};
FileFacts facts_of(const std::string& path);
// Adds a failure naming `what` for every difference.
void expect_unchanged(const FileFacts& before, const FileFacts& after, const std::string& what);

// Forks a child whose pid is exactly `pid` (clone3 with set_tid, which
// needs CAP_SYS_ADMIN) and execs argv in it with `cwd` as its working
// directory. Returns an empty Child and sets *error when that cannot be
// done (the pid is taken, no privilege).
Child spawn_with_pid(pid_t pid, const std::vector<std::string>& argv, const std::string& cwd, std::string* error);

// Every descendant of `pid`, children first (from /proc/PID/task/*/children).
std::vector<pid_t> descendants(pid_t pid);

// SIGKILLs every descendant of `pid`, and `pid` itself if `also_pid`, and
// reaps the descendants (orphans come to us: main.cpp makes this process a
// child subreaper). `pid` itself is left for its Child to reap.
void kill_tree(pid_t pid, bool also_pid);

// The pidlock program (tools/), and whether this build has it.
bool have_cli();
struct Ran {
  int code = -1;       // exit status, or 128+signal
  std::string output;  // stdout and stderr together
};
Ran run_cli(const std::vector<std::string>& args, std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace pidlock_recognise

#endif  // PIDLOCK_TESTS_RECOGNISE_RECOGNISE_SUPPORT_HPP
