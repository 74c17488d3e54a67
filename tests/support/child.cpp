#include "support/child.hpp"

#include "support/eventually.hpp"
#include "support/files.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <thread>

namespace pidlock_test {

using std::chrono::milliseconds;

namespace {

// Descriptors a spawned program gets as 0, 1 and 2 (-1: keep the test's).
struct Streams {
  int in = -1;
  int out = -1;
  int err = -1;
};

int open_output(const std::string& path, bool append) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0600);
  if (fd < 0) ADD_FAILURE() << "cannot create " << path << ": " << std::strerror(errno);
  return fd;
}

void close_all(std::initializer_list<int> fds) {
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
}

// In the forked child, before exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::vector<char*>& args, const Streams& s, bool die_with_test) {
  if (die_with_test) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::dup2(s.in, STDIN_FILENO) < 0) ::_exit(126);
  if (s.out >= 0 && ::dup2(s.out, STDOUT_FILENO) < 0) ::_exit(126);
  if (s.err >= 0 && ::dup2(s.err, STDERR_FILENO) < 0) ::_exit(126);
  ::execvp(args[0], args.data());
  const char* why = std::strerror(errno);
  (void)!::write(STDERR_FILENO, "exec failed: ", 13);
  (void)!::write(STDERR_FILENO, args[0], std::strlen(args[0]));
  (void)!::write(STDERR_FILENO, ": ", 2);
  (void)!::write(STDERR_FILENO, why, std::strlen(why));
  (void)!::write(STDERR_FILENO, "\n", 1);
  ::_exit(127);
}

}  // namespace

const char* holder_program() { return PIDLOCK_TEST_HOLDER; }

Stdio Stdio::captured_in(const std::string& dir) {
  static int counter = 0;
  const std::string tag = std::to_string(::getpid()) + "." + std::to_string(++counter);
  Stdio s;
  s.output_file = dir + "/.out." + tag;
  s.error_file = dir + "/.err." + tag;
  s.captured = true;
  return s;
}

Stdio Stdio::interactive() {
  Stdio s;
  s.input_pipe = true;
  s.die_with_test = true;
  return s;
}

Child Child::fork(const std::function<int(int report_fd)>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return {};
  }
  std::fflush(nullptr);  // no stdio buffer written twice
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close_all({fds[0], fds[1]});
    return {};
  }
  if (pid == 0) {
    ::close(fds[0]);
    int rc = 125;
    try {
      rc = body(fds[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: exception: %s\n", static_cast<int>(::getpid()), e.what());
    } catch (...) {
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(fds[1]);
  Child c;
  c.own(pid, fds[0]);
  return c;
}

Child Child::fork(const std::function<int()>& body) {
  return fork([&body](int) { return body(); });
}

Child Child::spawn(const std::vector<std::string>& argv, const Stdio& stdio) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int report[2] = {-1, -1}, input[2] = {-1, -1};
  Streams s;
  s.in = stdio.input_pipe ? (::pipe2(input, O_CLOEXEC) == 0 ? input[0] : -1)
                          : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdio.output_file.empty()) {
    s.out = ::pipe2(report, O_CLOEXEC) == 0 ? report[1] : -1;
  } else {
    s.out = open_output(stdio.output_file, stdio.append);
  }
  if (!stdio.error_file.empty())
    s.err = stdio.error_file == stdio.output_file ? ::fcntl(s.out, F_DUPFD_CLOEXEC, 0)
                                                  : open_output(stdio.error_file, stdio.append);
  const bool ready = s.in >= 0 && s.out >= 0 && (stdio.error_file.empty() || s.err >= 0);
  pid_t pid = -1;
  if (ready) {
    std::fflush(nullptr);
    pid = ::fork();
    if (pid == 0) exec_child(args, s, stdio.die_with_test);
  }
  if (!ready || pid < 0) ADD_FAILURE() << "cannot start " << argv.at(0) << ": " << std::strerror(errno);
  close_all({s.in, s.out, s.err});
  Child c;
  if (pid < 0) {
    close_all({report[0], input[1]});
    return c;
  }
  c.own(pid, report[0]);
  c.input_fd_ = input[1];
  c.output_file_ = stdio.output_file;
  c.error_file_ = stdio.error_file;
  c.captured_ = stdio.captured;
  // A write to a program that has died must fail (EPIPE), not kill the test.
  if (stdio.input_pipe) ::signal(SIGPIPE, SIG_IGN);
  return c;
}

Child Child::holder(const std::vector<std::string>& args) {
  std::vector<std::string> argv{holder_program()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn(argv);
}

Child Child::sleeper(const std::string& cwd) {
  Child c = fork([&cwd]() -> int {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return 1;
    for (;;) ::pause();
  });
  if (cwd.empty() || c.pid() <= 0) return c;
  // Ready once /proc shows it working there.
  struct stat want {};
  ::stat(cwd.c_str(), &want);
  const std::string link = "/proc/" + std::to_string(c.pid()) + "/cwd";
  const bool there = eventually([&] {
    struct stat now {};
    return ::stat(link.c_str(), &now) == 0 && now.st_dev == want.st_dev && now.st_ino == want.st_ino;
  }, std::chrono::milliseconds(2000));
  EXPECT_TRUE(there) << "the sleeper never worked in " << cwd;
  return c;
}

Child Child::adopt(pid_t pid) {
  Child c;
  c.own(pid, -1);
  return c;
}

void Child::own(pid_t pid, int report_fd) {
  pid_ = pid;
  reaped_ = false;
  status_ = -1;
  report_fd_ = report_fd;
  started_ = std::chrono::steady_clock::now();
}

Child::Child(Child&& other) noexcept { *this = std::move(other); }

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = other.pid_;
    reaped_ = other.reaped_;
    status_ = other.status_;
    report_fd_ = other.report_fd_;
    input_fd_ = other.input_fd_;
    output_file_ = std::move(other.output_file_);
    error_file_ = std::move(other.error_file_);
    captured_ = other.captured_;
    started_ = other.started_;
    other.pid_ = -1;
    other.reaped_ = true;
    other.report_fd_ = -1;
    other.input_fd_ = -1;
  }
  return *this;
}

Child::~Child() { reset(); }

void Child::reset() noexcept {
  close_all({report_fd_, input_fd_});
  report_fd_ = input_fd_ = -1;
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  reaped_ = true;
}

std::optional<std::string> Child::read_line(milliseconds timeout) {
  return pidlock_test::read_line(report_fd_, timeout);
}

bool Child::send(const std::string& line) { return input_fd_ >= 0 && write_line(input_fd_, line); }

void Child::close_input() {
  close_all({input_fd_});
  input_fd_ = -1;
}

void Child::kill(int signal) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
}

int Child::wait() {
  if (pid_ <= 0) return -1;
  if (reaped_) return status_;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitpid " << pid_ << ": " << std::strerror(errno);
      return -1;
    }
  }
  reaped_ = true;
  status_ = status;
  return status;
}

std::optional<int> Child::wait(milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return status_;
  // A pidfd is readable once the child has exited: no polling loop.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    bool ended = readable_within(pidfd, timeout);
    ::close(pidfd);
    if (!ended) return std::nullopt;
    return wait();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (!running()) return reaped_ ? std::optional<int>(status_) : std::nullopt;
    std::this_thread::sleep_for(milliseconds(2));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

bool Child::exited_with(int code, milliseconds timeout) {
  std::optional<int> status = wait(timeout);
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}

bool Child::running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
  } else if (r < 0 && errno == ECHILD) {
    reaped_ = true;  // reaped by someone else (a test that waits for any child)
  }
  return !reaped_;
}

void Child::wait_exited_keep_zombie() {
  siginfo_t info {};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitid " << pid_ << ": " << std::strerror(errno);
      return;
    }
  }
}

Outcome Child::finish(milliseconds limit) {
  Outcome o;
  std::optional<int> status = wait(limit);
  if (!status) {
    kill(SIGKILL);
    status = wait();
    o.err = "TEST HARNESS: process did not end within the limit; killed\n";
  }
  o.elapsed = std::chrono::steady_clock::now() - started_;
  if (WIFEXITED(*status)) {
    o.exited = true;
    o.code = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    o.signal = WTERMSIG(*status);
  }
  if (captured_) {
    o.out = try_read_file(output_file_).value_or("");
    o.err += try_read_file(error_file_).value_or("");
    ::unlink(output_file_.c_str());
    ::unlink(error_file_.c_str());
  }
  return o;
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

pid_t dead_pid() {
  Child c = Child::fork([](int) { return 0; });
  pid_t pid = c.pid();
  c.wait();
  return pid;
}

void reap_orphans() {
  int status;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

}  // namespace pidlock_test
