#include "helpers/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/filesystem/operations.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace pidlock_test {

const char* holder_program() { return PIDLOCK_TEST_HOLDER; }

TempDir::TempDir() {
  char templ[] = "/tmp/pidlock-test-XXXXXX";
  if (::mkdtemp(templ) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    return;
  }
  path_ = templ;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  boost::system::error_code ec;
  // A test may have made parts read-only; root ignores modes anyway.
  boost::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    ADD_FAILURE() << "cannot create " << path << ": " << std::strerror(errno);
    return;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ADD_FAILURE() << "write " << path << ": " << std::strerror(errno);
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

bool exists_no_follow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string first_line(const std::string& path) {
  std::string text = read_file(path);
  return text.substr(0, text.find('\n'));
}

bool kernel_lock_held(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << std::strerror(errno);
    return false;
  }
  // The holder's lock covers the first byte; waiters' shared locks on the
  // second byte are not a holder.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    ADD_FAILURE() << "F_OFD_GETLK " << path << ": " << std::strerror(err);
    return false;
  }
  return fl.l_type != F_UNLCK;
}

Pipe::Pipe() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2: " << std::strerror(errno);
}
Pipe::~Pipe() {
  close_read();
  close_write();
}
void Pipe::close_read() {
  if (fds_[0] >= 0) ::close(fds_[0]);
  fds_[0] = -1;
}
void Pipe::close_write() {
  if (fds_[1] >= 0) ::close(fds_[1]);
  fds_[1] = -1;
}

bool write_string(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  const std::int64_t deadline = monotonic_ms() + timeout.count();
  for (;;) {
    std::int64_t left = deadline - monotonic_ms();
    if (left <= 0) return std::nullopt;
    struct pollfd p {fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return std::nullopt;
    char c;
    ssize_t n = ::read(fd, &c, 1);  // one byte at a time: never read past the line
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    if (c == '\n') return line;
    line += c;
  }
}

void wait_for_eof(int fd) {
  char buf[64];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

Child Child::fork(const std::function<int(int report_fd)>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return {};
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
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
  c.pid_ = pid;
  c.report_fd_ = fds[0];
  c.reaped_ = false;
  return c;
}

Child Child::spawn(const std::vector<std::string>& argv) {
  return fork([argv](int report_fd) -> int {
    if (::dup2(report_fd, STDOUT_FILENO) < 0) return 126;
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    return 127;
  });
}

Child Child::adopt(pid_t pid) {
  Child c;
  c.pid_ = pid;
  c.reaped_ = false;
  return c;
}

Child Child::holder(const std::vector<std::string>& args) {
  std::vector<std::string> argv{holder_program()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn(argv);
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), report_fd_(other.report_fd_), reaped_(other.reaped_) {
  other.pid_ = -1;
  other.report_fd_ = -1;
  other.reaped_ = true;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = other.pid_;
    report_fd_ = other.report_fd_;
    reaped_ = other.reaped_;
    other.pid_ = -1;
    other.report_fd_ = -1;
    other.reaped_ = true;
  }
  return *this;
}

Child::~Child() { reset(); }

void Child::reset() noexcept {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (report_fd_ >= 0) ::close(report_fd_);
  pid_ = -1;
  report_fd_ = -1;
  reaped_ = true;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  return pidlock_test::read_line(report_fd_, timeout);
}

void Child::kill(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

int Child::wait() {
  if (pid_ <= 0 || reaped_) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << std::strerror(errno);
      return -1;
    }
  }
  reaped_ = true;
  return status;
}

void Child::wait_exited_keep_zombie() {
  siginfo_t info {};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) {
      ADD_FAILURE() << "waitid: " << std::strerror(errno);
      return;
    }
  }
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

namespace {

// The fields after the command name of /proc/PID/stat (field 3 first).
std::vector<std::string> stat_fields(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::vector<std::string> fields;
  auto close = text.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream in(text.substr(close + 1));
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::uint64_t proc_start_ticks(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 19 ? std::stoull(f[19]) : 0;  // field 22
}
pid_t proc_parent(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 1 ? static_cast<pid_t>(std::stol(f[1])) : 0;  // field 4
}
char proc_state(pid_t pid) {
  auto f = stat_fields(pid);
  return f.empty() ? '?' : f[0][0];
}

std::int64_t boot_time() {
  std::string text = read_file("/proc/stat");
  auto at = text.find("\nbtime ");
  return at == std::string::npos ? 0 : std::strtoll(text.c_str() + at + 7, nullptr, 10);
}

std::int64_t proc_start_epoch(pid_t pid) {
  return boot_time() + static_cast<std::int64_t>(proc_start_ticks(pid) /
                                                 static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
}

std::string boot_id() { return trimmed(read_file("/proc/sys/kernel/random/boot_id")); }

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::uint64_t pid_namespace_inode(const std::string& proc_ns_path) {
  struct stat st {};
  if (::stat(proc_ns_path.c_str(), &st) != 0) {
    ADD_FAILURE() << "stat " << proc_ns_path << ": " << std::strerror(errno);
    return 0;
  }
  return st.st_ino;
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

pid_t dead_pid() {
  Child c = Child::fork([](int) { return 0; });
  pid_t pid = c.pid();
  c.wait();
  return pid;
}

std::string postmaster_pid(long pid, const std::string& data_directory, std::int64_t start, int port,
                           const std::string& socket_directory, const std::string& status) {
  return std::to_string(pid) + "\n" + data_directory + "\n" + std::to_string(start) + "\n" +
         std::to_string(port) + "\n" + socket_directory + "\n*\n  5432001    393216\n" + status + "\n";
}

std::string socket_lock(long pid, const std::string& data_directory, std::int64_t start, int port,
                        const std::string& socket_directory) {
  return std::to_string(pid) + "\n" + data_directory + "\n" + std::to_string(start) + "\n" +
         std::to_string(port) + "\n" + socket_directory + "\n";
}

bool drop_privileges(uid_t id) {
  if (::setgroups(0, nullptr) != 0) return false;
  if (::setresgid(id, id, id) != 0) return false;
  if (::setresuid(id, id, id) != 0) return false;
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (::getresuid(&r, &e, &s) != 0 || ::getresgid(&gr, &ge, &gs) != 0) return false;
  if (r != id || e != id || s != id || gr != id || ge != id || gs != id) return false;
  // Proof that root is really gone: going back must fail.
  return ::setuid(0) != 0 && ::geteuid() == id;
}

std::int64_t monotonic_ms() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace pidlock_test
