#include "waiting_support.hpp"

#include <pidlock/lock_manager.hpp>
#include <pidlock/logging.hpp>
#include <pidlock/unix_socket.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace waiting_test {

namespace {

// Take-overs and losses are what these tests provoke, hundreds of times:
// their warnings would bury a failure's output. Errors stay visible.
const bool kQuiet = [] {
  pidlock::set_log_threshold(pidlock::LogThreshold::kError);
  return true;
}();

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/pidlock-waiting-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) fail("mkdtemp");
  path_ = tmpl;
}

TempDir::~TempDir() { ::nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(path_.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Pipe::Pipe() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) fail("pipe2");
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

bool readable_within(int fd, milliseconds timeout) {
  struct pollfd p {fd, POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    int rc = ::poll(&p, 1, left.count() < 0 ? 0 : static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool write_byte(int fd, char c) {
  for (;;) {
    ssize_t n = ::write(fd, &c, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

std::optional<char> read_byte(int fd, milliseconds timeout) {
  if (!readable_within(fd, timeout)) return std::nullopt;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    return std::nullopt;
  }
}

bool write_line(int fd, const std::string& line) {
  std::string s = line + "\n";
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::string> read_line(int fd, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    std::optional<char> c = read_byte(fd, left);
    if (!c) return std::nullopt;
    if (*c == '\n') return line;
    line += *c;
  }
}

Child Child::fork(const std::function<int()>& body) {
  std::fflush(nullptr);  // no duplicated stdio buffers
  pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    int code = 125;
    try {
      code = body();
    } catch (...) {
      code = 125;
    }
    ::_exit(code);
  }
  return Child(pid);
}

Child::Child(Child&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }
Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    this->~Child();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}
Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void Child::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> Child::wait(milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  // A pidfd is readable once the child has exited: no polling loop.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    bool ended = readable_within(pidfd, timeout);
    ::close(pidfd);
    if (!ended) return std::nullopt;
  }
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid_, &status, pidfd >= 0 ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r != pid_) return std::nullopt;
  pid_ = -1;
  return status;
}

bool Child::exited_with(int code, milliseconds timeout) {
  std::optional<int> status = wait(timeout);
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}

std::optional<milliseconds> cpu_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: count fields after its ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3.. : state is field 3; utime is field 14, stime field 15.
  for (int i = 3; i <= 15 && (fields >> field); ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  long ticks = ::sysconf(_SC_CLK_TCK);
  return milliseconds((utime + stime) * 1000 / static_cast<unsigned long long>(ticks));
}

std::optional<struct timespec> mtime_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_mtim;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace waiting_test

// --- waiting and holding ----------------------------------------------------

namespace waiting_test {

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

namespace {

// Is the thread in poll (or ppoll) with a timeout other than zero? A
// zero-timeout poll is a readiness probe (Canceller::cancelled), not a wait.
bool sleeping_in_poll(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  long nr = -1;
  if (!(in >> nr)) return false;  // "running"
  std::string fds, nfds, timeout;
  in >> fds >> nfds >> timeout;
#ifdef SYS_poll
  if (nr == SYS_poll) return timeout != "0x0";
#endif
  return nr == SYS_ppoll;  // the timeout is a pointer there: any wait counts
}

}  // namespace

bool wait_until_sleeping_in_poll(pid_t pid, pid_t tid, milliseconds timeout) {
  // The only polling loop of these tests: it watches for a state, it does
  // not guess a delay, and it needs the state to hold for two looks.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = sleeping_in_poll(pid, tid) ? seen + 1 : 0;
    if (seen >= 2) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

HeldInChild::HeldInChild(const std::string& path, Kind kind) {
  child_ = Child::fork([&]() -> int {
    ready_.close_read();
    go_.close_write();
    // Another process, not a sharer of ours: without this the child would
    // hold a share of every lock the test process holds (a lock lives as
    // long as any process that inherited it).
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != ready_.write_end() && fd != go_.read_end()) ::close(fd);
    pidlock::LockManager manager;
    std::error_code ec;
    pidlock::LockHandle handle;
    int listener = -1;
    if (kind == Kind::kUnixSocket) {
      handle = pidlock::lock_unix_socket(manager, path, {}, ec);
      if (!ec) {
        listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un addr {};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (listener < 0 || ::bind(listener, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener, 4) != 0)
          ec = std::error_code(errno, std::generic_category());
      }
    } else {
      handle = manager.acquire(path, {}, ec);
    }
    if (ec) {
      write_byte(ready_.write_end(), 'E');
      return 1;
    }
    write_byte(ready_.write_end(), 'R');
    // Hold until told (or until the test process goes away: EOF).
    read_byte(go_.read_end(), std::chrono::hours(1));
    if (listener >= 0) ::unlink(path.c_str());  // as a server does at shutdown
    return handle.release() ? 2 : 0;
  });
  ready_.close_write();
  go_.close_read();
  std::optional<char> answer = read_byte(ready_.read_end());
  ok_ = answer == 'R';
}

bool HeldInChild::release() {
  write_byte(go_.write_end());
  return child_.exited_with(0);
}

void HeldInChild::kill() {
  child_.kill(SIGKILL);
  child_.wait();
}

}  // namespace waiting_test
