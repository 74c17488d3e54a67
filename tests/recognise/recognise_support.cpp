#include "recognise/recognise_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <thread>

namespace pidlock_recognise {

FileFacts facts_of(const std::string& path) {
  FileFacts f;
  if (::lstat(path.c_str(), &f.st) != 0) return f;
  f.exists = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return f;
  f.head.resize(64 * 1024);
  ssize_t n = ::pread(fd, &f.head[0], f.head.size(), 0);
  f.head.resize(n > 0 ? static_cast<size_t>(n) : 0);
  ::close(fd);
  return f;
}

void expect_unchanged(const FileFacts& before, const FileFacts& after, const std::string& what) {
  ASSERT_TRUE(before.exists) << what;
  EXPECT_TRUE(after.exists) << what << ": the file was removed";
  if (!after.exists) return;
  EXPECT_EQ(after.head, before.head) << what << ": the bytes changed";
  EXPECT_EQ(after.st.st_ino, before.st.st_ino) << what << ": the file was replaced";
  EXPECT_EQ(after.st.st_size, before.st.st_size) << what;
  EXPECT_EQ(after.st.st_mode, before.st.st_mode) << what << ": the mode changed";
  EXPECT_EQ(after.st.st_uid, before.st.st_uid) << what << ": the owner changed";
  EXPECT_EQ(after.st.st_gid, before.st.st_gid) << what << ": the group changed";
  EXPECT_EQ(after.st.st_nlink, before.st.st_nlink) << what;
  EXPECT_TRUE(after.st.st_mtim.tv_sec == before.st.st_mtim.tv_sec &&
              after.st.st_mtim.tv_nsec == before.st.st_mtim.tv_nsec)
      << what << ": the modification time changed";
  EXPECT_TRUE(after.st.st_ctim.tv_sec == before.st.st_ctim.tv_sec &&
              after.st.st_ctim.tv_nsec == before.st.st_ctim.tv_nsec)
      << what << ": the change time changed (chmod, chown, write or link)";
}

namespace {

// struct clone_args of <linux/sched.h> up to set_tid_size (CLONE_ARGS_SIZE_VER1),
// declared here because that header clashes with glibc's <sched.h>.
struct CloneArgs {
  std::uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
};

}  // namespace

Child spawn_with_pid(pid_t pid, const std::vector<std::string>& argv, const std::string& cwd, std::string* error) {
  // The report pipe of a Child is made by Child::fork; a raw clone3 child
  // cannot use that machinery, so it reports through its exec alone: the
  // parent learns of a failed exec from the exit status.
  pid_t want = pid;
  CloneArgs args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<std::uint64_t>(&want);
  args.set_tid_size = 1;
  std::vector<char*> raw;
  for (const std::string& a : argv) raw.push_back(const_cast<char*>(a.c_str()));
  raw.push_back(nullptr);
  long got = ::syscall(SYS_clone3, &args, sizeof args);
  if (got == 0) {
    // The child of a raw clone: only async-signal-safe calls until exec.
    if (::chdir(cwd.c_str()) != 0) ::_exit(120);
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
  if (got < 0) {
    *error = std::string("clone3 with pid ") + std::to_string(pid) + ": " + std::strerror(errno);
    return Child();
  }
  return Child::adopt(static_cast<pid_t>(got));
}

std::vector<pid_t> descendants(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo{pid};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    std::ifstream in("/proc/" + std::to_string(p) + "/task/" + std::to_string(p) + "/children");
    long child;
    while (in >> child) {
      out.push_back(static_cast<pid_t>(child));
      todo.push_back(static_cast<pid_t>(child));
    }
  }
  return out;
}

void kill_tree(pid_t pid, bool also_pid) {
  std::vector<pid_t> tree = descendants(pid);
  for (pid_t p : tree) ::kill(p, SIGKILL);
  if (also_pid) ::kill(pid, SIGKILL);
  // The killed come to us as orphans (we are a child subreaper) once their
  // parents are gone: reap them, and only them (`pid` is its Child's to
  // reap), until each is reaped or gone.
  for (int i = 0; i < 200 && !tree.empty(); ++i) {
    for (auto it = tree.begin(); it != tree.end();) {
      int status;
      const bool gone = ::waitpid(*it, &status, WNOHANG) > 0 || (::kill(*it, 0) != 0 && errno == ESRCH);
      it = gone ? tree.erase(it) : it + 1;
    }
    if (!tree.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool have_cli() {
#ifdef PIDLOCK_CLI_PATH
  return ::access(PIDLOCK_CLI_PATH, X_OK) == 0;
#else
  return false;
#endif
}

Ran run_cli(const std::vector<std::string>& args, std::chrono::milliseconds limit) {
  Ran ran;
#ifdef PIDLOCK_CLI_PATH
  std::vector<std::string> argv{PIDLOCK_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  Child child = Child::fork([&](int report_fd) -> int {
    if (::dup2(report_fd, STDOUT_FILENO) < 0 || ::dup2(report_fd, STDERR_FILENO) < 0) return 126;
    std::vector<char*> raw;
    for (const std::string& a : argv) raw.push_back(const_cast<char*>(a.c_str()));
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    return 127;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (auto line = child.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now()))) {
    ran.output += *line + "\n";
  }
  ran.code = exit_code(child.wait());
#else
  (void)args;
  (void)limit;
#endif
  return ran;
}

}  // namespace pidlock_recognise
