#include "fault_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>

namespace pidlock_faults {

TempDir::TempDir() {
  char templ[] = "/tmp/pidlock-faults.XXXXXX";
  if (::mkdtemp(templ) == nullptr) std::abort();
  path_ = templ;
}

TempDir::~TempDir() {
  for (const std::string& n : list_folder(path_)) ::unlink((path_ + "/" + n).c_str());
  ::rmdir(path_.c_str());
}

std::vector<std::string> list_folder(const std::string& dir) {
  std::vector<std::string> names;
  DIR* dp = ::opendir(dir.c_str());
  if (dp == nullptr) return names;
  while (dirent* e = ::readdir(dp)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dp);
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const std::string& n : list_folder(dir)) out[n] = read_bytes(dir + "/" + n);
  return out;
}

std::string read_bytes(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
  ::close(fd);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

int open_fd_count() { return static_cast<int>(list_folder("/proc/self/fd").size()); }

pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    int rc = 125;
    try {
      rc = body();
    } catch (...) {
      rc = 125;
    }
    ::_exit(rc);
  }
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

Holder::Holder(const std::string& path) {
  int ready[2], release[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) std::abort();
  pid_ = fork_child([&] {
    ::close(ready[0]);
    ::close(release[1]);
    d::set_system(nullptr);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::LockHandle h = m.acquire(path, {}, ec);
    char c = h ? '1' : '0';
    (void)!::write(ready[1], &c, 1);
    if (!h) return 1;
    char x;
    (void)!::read(release[0], &x, 1);  // until the parent closes its end
    ::_exit(0);                        // without releasing: like a crash
  });
  ::close(ready[1]);
  ::close(release[0]);
  release_fd_ = release[1];
  char c = 0;
  ok_ = ::read(ready[0], &c, 1) == 1 && c == '1';
  ::close(ready[0]);
}

void Holder::stop() {
  if (pid_ < 0) return;
  ::close(release_fd_);
  wait_child(pid_);
  pid_ = -1;
}

Holder::~Holder() { stop(); }

Sleeper::Sleeper(const std::string& cwd) {
  pid_ = fork_child([cwd] {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return 1;
    for (;;) ::pause();
    return 0;
  });
  if (cwd.empty()) return;
  // Ready once it works there.
  struct stat want {};
  ::stat(cwd.c_str(), &want);
  const std::string link = "/proc/" + std::to_string(pid_) + "/cwd";
  for (int i = 0; i < 2000; ++i) {
    struct stat now {};
    if (::stat(link.c_str(), &now) == 0 && now.st_dev == want.st_dev && now.st_ino == want.st_ino) return;
    ::usleep(1000);
  }
}

Sleeper::~Sleeper() {
  ::kill(pid_, SIGKILL);
  wait_child(pid_);
}

bool make_stale_pidlock_file(const std::string& path) {
  pid_t pid = fork_child([&] {
    d::set_system(nullptr);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::LockHandle h = m.acquire(path, {}, ec);
    if (!h) return 1;
    ::_exit(0);  // no release: the file stays, its kernel lock dies with us
  });
  int status = wait_child(pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && exists(path);
}

std::string postmaster_pid(long pid, const std::string& data_directory, long long start) {
  return std::to_string(pid) + "\n" + data_directory + "\n" + std::to_string(start) +
         "\n5432\n/tmp\n*\n  5432001    123456\nready   \n";
}

std::string acquire_in_child(const std::string& path, bool* took_over) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  pid_t pid = fork_child([&] {
    ::close(p[0]);
    d::set_system(nullptr);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::LockHandle h = m.acquire(path, {}, ec);
    std::string msg;
    if (!h) {
      msg = "child acquire failed: " + ec.message();
    } else {
      msg = h.took_over() ? "T" : "F";
      if (std::error_code rec = h.release()) msg = "child release failed: " + rec.message();
    }
    (void)!::write(p[1], msg.data(), msg.size());
    return 0;
  });
  ::close(p[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = wait_child(pid);
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) return "child died: " + describe_status(status);
  if (msg == "T" || msg == "F") {
    if (took_over) *took_over = msg == "T";
    return "";
  }
  return msg.empty() ? "child said nothing" : msg;
}

int inspect_in_child(const std::string& path) {
  pid_t pid = fork_child([&] {
    d::set_system(nullptr);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::Inspection i = m.inspect(path, {}, ec);
    if (ec) return 100;
    return static_cast<int>(i.verdict);
  });
  int status = wait_child(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 100) return -1;
  return WEXITSTATUS(status);
}

const char* call_name(Call c) {
  switch (c) {
    case Call::kOpenat: return "openat";
    case Call::kClose: return "close";
    case Call::kPread: return "pread";
    case Call::kPwrite: return "pwrite";
    case Call::kFsync: return "fsync";
    case Call::kFstat: return "fstat";
    case Call::kFstatat: return "fstatat";
    case Call::kUnlinkat: return "unlinkat";
    case Call::kFchmod: return "fchmod";
    case Call::kFtruncate: return "ftruncate";
    case Call::kFutimens: return "futimens";
    case Call::kSetCloexec: return "set_cloexec";
    case Call::kOpenUnnamed: return "open_unnamed";
    case Call::kLinkUnnamed: return "link_unnamed";
    case Call::kLinkat: return "linkat";
    case Call::kTryLock: return "try_lock";
    case Call::kQueryLock: return "query_lock";
    case Call::kUnlock: return "unlock";
    case Call::kAnnounceWaiter: return "announce_waiter";
    case Call::kQueryWaiters: return "query_waiters";
    case Call::kKill: return "kill";
    case Call::kProcessStat: return "process_stat";
    case Call::kProcessScan: return "process_scan";
    case Call::kQueryFlock: return "query_flock";
    case Call::kShmStat: return "shm_stat";
    case Call::kConnectUnix: return "connect_unix";
    case Call::kCount: break;
  }
  return "?";
}

bool FaultSystem::fire(Call c) {
  if (!armed_) return false;
  int n = ++counts_[static_cast<size_t>(c)];
  if (c != call_ || n != nth_) return false;
  hit_ = true;
  return true;
}

#define PIDLOCK_FAULT_ERRNO(call, ...)   \
  if (fire(call)) {                      \
    errno = err_;                        \
    return -1;                           \
  }                                      \
  return SystemWrapper::__VA_ARGS__;

int FaultSystem::openat(int dd, const char* n, int f, mode_t m) { PIDLOCK_FAULT_ERRNO(Call::kOpenat, openat(dd, n, f, m)) }
int FaultSystem::close(int fd) {
  if (fire(Call::kClose)) {
    // Linux closes the descriptor even when close() reports an error
    // (EINTR included); a caller that retried would close someone else's.
    SystemWrapper::close(fd);
    errno = err_;
    return -1;
  }
  return SystemWrapper::close(fd);
}
ssize_t FaultSystem::pread(int fd, void* b, size_t c, off_t o) { PIDLOCK_FAULT_ERRNO(Call::kPread, pread(fd, b, c, o)) }
ssize_t FaultSystem::pwrite(int fd, const void* b, size_t c, off_t o) {
  if (fire(Call::kPwrite)) {
    if (kind_ == FaultKind::kShortWrite) return SystemWrapper::pwrite(fd, b, c > 1 ? c / 2 : c, o);
    if (kind_ == FaultKind::kZeroWrite) return 0;
    errno = err_;
    return -1;
  }
  return SystemWrapper::pwrite(fd, b, c, o);
}
int FaultSystem::fsync(int fd) { PIDLOCK_FAULT_ERRNO(Call::kFsync, fsync(fd)) }
int FaultSystem::fstat(int fd, struct stat* st) { PIDLOCK_FAULT_ERRNO(Call::kFstat, fstat(fd, st)) }
int FaultSystem::fstatat(int dd, const char* n, struct stat* st, int f) { PIDLOCK_FAULT_ERRNO(Call::kFstatat, fstatat(dd, n, st, f)) }
int FaultSystem::unlinkat(int dd, const char* n, int f) { PIDLOCK_FAULT_ERRNO(Call::kUnlinkat, unlinkat(dd, n, f)) }
int FaultSystem::fchmod(int fd, mode_t m) { PIDLOCK_FAULT_ERRNO(Call::kFchmod, fchmod(fd, m)) }
int FaultSystem::ftruncate(int fd, off_t length) { PIDLOCK_FAULT_ERRNO(Call::kFtruncate, ftruncate(fd, length)) }
int FaultSystem::futimens(int fd, const struct timespec t[2]) { PIDLOCK_FAULT_ERRNO(Call::kFutimens, futimens(fd, t)) }
int FaultSystem::set_cloexec(int fd, bool on) { PIDLOCK_FAULT_ERRNO(Call::kSetCloexec, set_cloexec(fd, on)) }
int FaultSystem::open_unnamed(int dd, mode_t m, bool c) { PIDLOCK_FAULT_ERRNO(Call::kOpenUnnamed, open_unnamed(dd, m, c)) }
int FaultSystem::link_unnamed(int fd, int dd, const char* n) { PIDLOCK_FAULT_ERRNO(Call::kLinkUnnamed, link_unnamed(fd, dd, n)) }
int FaultSystem::linkat(int od, const char* o, int nd, const char* n) { PIDLOCK_FAULT_ERRNO(Call::kLinkat, linkat(od, o, nd, n)) }
int FaultSystem::kill(pid_t p, int s) { PIDLOCK_FAULT_ERRNO(Call::kKill, kill(p, s)) }
int FaultSystem::process_scan(const d::FileId* dir, const d::FileId* file, d::ProcessScan* out) {
  PIDLOCK_FAULT_ERRNO(Call::kProcessScan, process_scan(dir, file, out))
}
int FaultSystem::shm_stat(int id, d::SharedMemoryStat* out) { PIDLOCK_FAULT_ERRNO(Call::kShmStat, shm_stat(id, out)) }
int FaultSystem::connect_unix(const char* path) { PIDLOCK_FAULT_ERRNO(Call::kConnectUnix, connect_unix(path)) }
int FaultSystem::unlock(int fd) { PIDLOCK_FAULT_ERRNO(Call::kUnlock, unlock(fd)) }
int FaultSystem::announce_waiter(int fd) { PIDLOCK_FAULT_ERRNO(Call::kAnnounceWaiter, announce_waiter(fd)) }

#undef PIDLOCK_FAULT_ERRNO

d::KernelLock FaultSystem::try_lock(int fd) {
  if (fire(Call::kTryLock)) {
    if (kind_ == FaultKind::kUnsupported) return d::KernelLock::kUnsupported;
    errno = err_;
    return d::KernelLock::kError;
  }
  return SystemWrapper::try_lock(fd);
}

d::LockQuery FaultSystem::query_lock(int fd) {
  if (fire(Call::kQueryLock)) {
    if (kind_ == FaultKind::kUnsupported) return d::LockQuery::kUnsupported;
    errno = err_;
    return d::LockQuery::kError;
  }
  return SystemWrapper::query_lock(fd);
}

d::LockQuery FaultSystem::query_waiters(int fd) {
  if (fire(Call::kQueryWaiters)) {
    if (kind_ == FaultKind::kUnsupported) return d::LockQuery::kUnsupported;
    errno = err_;
    return d::LockQuery::kError;
  }
  return SystemWrapper::query_waiters(fd);
}

d::LockQuery FaultSystem::query_flock(int fd) {
  if (fire(Call::kQueryFlock)) {
    errno = err_;
    return d::LockQuery::kError;
  }
  return SystemWrapper::query_flock(fd);
}

bool FaultSystem::process_stat(pid_t p, d::ProcessStat* o) {
  if (fire(Call::kProcessStat)) {
    errno = err_;
    return false;
  }
  return SystemWrapper::process_stat(p, o);
}

}  // namespace pidlock_faults
