#include "support/fault_system.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace pidlock_test {

const char* call_name(Call c) {
  static const char* const kNames[] = {
      "openat",       "close",        "pread",  "pwrite",   "fsync",           "fstat",
      "fstatat",      "unlinkat",     "fchmod", "fchown", "ftruncate", "futimens",       "set_cloexec",
      "try_lock",     "wait_lock",    "query_lock",   "unlock",
      "announce_waiter", "query_waiters", "kill", "process_stat", "process_scan", "query_flock",
      "shm_stat",     "connect_unix", "send_datagram",
  };
  static_assert(sizeof kNames / sizeof kNames[0] == static_cast<size_t>(Call::kCount));
  return c < Call::kCount ? kNames[static_cast<size_t>(c)] : "?";
}

void FaultSystem::arm(Call call, int nth, FaultKind kind, int err, int times) {
  counts_.fill(0);
  hits_ = 0;
  call_ = call;
  first_ = nth;
  last_ = times >= kEveryCall - nth ? kEveryCall : nth + times - 1;
  fault_ = Fault{kind, err};
  armed_ = true;
}

void FaultSystem::always(Call call, FaultKind kind, int err) {
  always_[static_cast<size_t>(call)] = Fault{kind, err};
}

std::optional<FaultSystem::Fault> FaultSystem::due(Call c) {
  if (armed_) {
    int n = ++counts_[static_cast<size_t>(c)];
    if (c == call_ && n >= first_ && n <= last_) {
      ++hits_;
      return fault_;
    }
  }
  return always_[static_cast<size_t>(c)];
}

bool FaultSystem::fails(Call c) {
  std::optional<Fault> f = due(c);
  if (f) errno = f->err;
  return f.has_value();
}

void FaultSystem::crash_at(int index, Death death, int report_fd) {
  crash_armed_ = true;
  crash_index_ = index;
  crash_step_.clear();
  death_ = death;
  report_fd_ = report_fd;
  seen_ = 0;
}

void FaultSystem::crash_at(const std::string& step, Death death) {
  crash_at(-1, death);
  crash_step_ = step;
}

void FaultSystem::checkpoint(const char* step) {
  if (!crash_armed_) return SystemWrapper::checkpoint(step);
  const bool here = crash_step_.empty() ? seen_++ == crash_index_ : crash_step_ == step;
  if (here) {
    if (death_ == Death::kExit) ::_exit(kDiedAtStep);  // no destructors, no release
    ::raise(SIGKILL);
  }
  if (report_fd_ >= 0) {
    std::string line = std::string(step) + "\n";
    (void)!::write(report_fd_, line.data(), line.size());
  }
}

int FaultSystem::openat(int dd, const char* n, int f, mode_t m) {
  return fails(Call::kOpenat) ? -1 : SystemWrapper::openat(dd, n, f, m);
}

int FaultSystem::close(int fd) {
  std::optional<Fault> f = due(Call::kClose);
  int rc = SystemWrapper::close(fd);
  if (!f) return rc;
  // Linux closes the descriptor even when close() reports an error (EINTR
  // included); a caller that retried would close someone else's.
  errno = f->err;
  return -1;
}

ssize_t FaultSystem::pread(int fd, void* b, size_t c, off_t o) {
  return fails(Call::kPread) ? -1 : SystemWrapper::pread(fd, b, c, o);
}

ssize_t FaultSystem::pwrite(int fd, const void* b, size_t c, off_t o) {
  std::optional<Fault> f = due(Call::kPwrite);
  if (!f) return SystemWrapper::pwrite(fd, b, c, o);
  switch (f->kind) {
    case FaultKind::kShortWrite: return SystemWrapper::pwrite(fd, b, c > 1 ? c / 2 : c, o);
    case FaultKind::kTrickleWrite: return SystemWrapper::pwrite(fd, b, c > 0 ? 1 : c, o);
    case FaultKind::kZeroWrite: return 0;
    default: errno = f->err; return -1;
  }
}

int FaultSystem::fsync(int fd) { return fails(Call::kFsync) ? -1 : SystemWrapper::fsync(fd); }
int FaultSystem::fstat(int fd, struct stat* st) { return fails(Call::kFstat) ? -1 : SystemWrapper::fstat(fd, st); }

int FaultSystem::fstatat(int dd, const char* n, struct stat* st, int f) {
  return fails(Call::kFstatat) ? -1 : SystemWrapper::fstatat(dd, n, st, f);
}

int FaultSystem::unlinkat(int dd, const char* n, int f) {
  return fails(Call::kUnlinkat) ? -1 : SystemWrapper::unlinkat(dd, n, f);
}

int FaultSystem::fchmod(int fd, mode_t m) { return fails(Call::kFchmod) ? -1 : SystemWrapper::fchmod(fd, m); }
int FaultSystem::fchown(int fd, uid_t u, gid_t g) { return fails(Call::kFchown) ? -1 : SystemWrapper::fchown(fd, u, g); }

int FaultSystem::ftruncate(int fd, off_t length) {
  return fails(Call::kFtruncate) ? -1 : SystemWrapper::ftruncate(fd, length);
}

int FaultSystem::futimens(int fd, const struct timespec t[2]) {
  return fails(Call::kFutimens) ? -1 : SystemWrapper::futimens(fd, t);
}

int FaultSystem::set_cloexec(int fd, bool on) {
  return fails(Call::kSetCloexec) ? -1 : SystemWrapper::set_cloexec(fd, on);
}

d::KernelLock FaultSystem::try_lock(int fd) {
  std::optional<Fault> f = due(Call::kTryLock);
  if (!f) return SystemWrapper::try_lock(fd);
  if (f->kind == FaultKind::kUnsupported) return d::KernelLock::kUnsupported;
  errno = f->err;
  return d::KernelLock::kError;
}

int FaultSystem::wait_lock(int fd) { return fails(Call::kWaitLock) ? -1 : SystemWrapper::wait_lock(fd); }

d::LockQuery FaultSystem::query_fault(const Fault& f) {
  if (f.kind == FaultKind::kUnsupported) return d::LockQuery::kUnsupported;
  errno = f.err;
  return d::LockQuery::kError;
}

d::LockQuery FaultSystem::query_lock(int fd) {
  std::optional<Fault> f = due(Call::kQueryLock);
  return f ? query_fault(*f) : SystemWrapper::query_lock(fd);
}

d::LockQuery FaultSystem::query_waiters(int fd) {
  std::optional<Fault> f = due(Call::kQueryWaiters);
  return f ? query_fault(*f) : SystemWrapper::query_waiters(fd);
}

int FaultSystem::unlock(int fd) { return fails(Call::kUnlock) ? -1 : SystemWrapper::unlock(fd); }

int FaultSystem::announce_waiter(int fd) {
  return fails(Call::kAnnounceWaiter) ? -1 : SystemWrapper::announce_waiter(fd);
}

int FaultSystem::kill(pid_t p, int s) { return fails(Call::kKill) ? -1 : SystemWrapper::kill(p, s); }

bool FaultSystem::process_stat(pid_t p, d::ProcessStat* o) {
  return fails(Call::kProcessStat) ? false : SystemWrapper::process_stat(p, o);
}

int FaultSystem::process_scan(const d::FileId* dir, const d::FileId* file, d::ProcessScan* out) {
  return fails(Call::kProcessScan) ? -1 : SystemWrapper::process_scan(dir, file, out);
}

d::LockQuery FaultSystem::query_flock(int fd) {
  std::optional<Fault> f = due(Call::kQueryFlock);
  return f ? query_fault(*f) : SystemWrapper::query_flock(fd);
}

int FaultSystem::shm_stat(int id, d::SharedMemoryStat* out) {
  return fails(Call::kShmStat) ? -1 : SystemWrapper::shm_stat(id, out);
}

ssize_t FaultSystem::send_datagram(const char* address, const void* data, size_t size) {
  return fails(Call::kSendDatagram) ? -1 : SystemWrapper::send_datagram(address, data, size);
}

int FaultSystem::connect_unix(const char* path) {
  return fails(Call::kConnectUnix) ? -1 : SystemWrapper::connect_unix(path);
}

NoKernelLocksSystem::NoKernelLocksSystem() {
  always(Call::kTryLock, FaultKind::kUnsupported);
  always(Call::kWaitLock, FaultKind::kErrno, ENOLCK);
  always(Call::kQueryLock, FaultKind::kUnsupported);
  always(Call::kQueryWaiters, FaultKind::kUnsupported);
  always(Call::kUnlock, FaultKind::kErrno, ENOLCK);
  always(Call::kAnnounceWaiter, FaultKind::kErrno, ENOLCK);
}

}  // namespace pidlock_test
