// Helpers of the fault tests (issue 5): a System that fails the n-th call
// of one function, a System that dies at the n-th checkpoint, temporary
// folders, child processes. Self-contained on purpose: these tests must not
// break when the main suite's helpers change.
#ifndef PIDLOCK_TESTS_FAULTS_FAULT_SUPPORT_HPP
#define PIDLOCK_TESTS_FAULTS_FAULT_SUPPORT_HPP

#include <pidlock/pidlock.hpp>

#include "posix/system.hpp"

#include <sys/types.h>

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pidlock_faults {

namespace d = pidlock::detail;

// --- files and folders ---

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> list_folder(const std::string& dir);  // sorted, no . and ..
std::map<std::string, std::string> snapshot(const std::string& dir);  // name -> bytes
std::string read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::string& bytes);
bool exists(const std::string& path);
int open_fd_count();  // entries of /proc/self/fd

// --- processes ---

// Forks; the child runs body() and _exits with its result (exceptions:
// 125). Returns the child's pid.
pid_t fork_child(const std::function<int()>& body);
// Reaps `pid`; returns the raw wait status.
int wait_child(pid_t pid);
// "exit 3", "signal 9".
std::string describe_status(int status);

// A real process that holds `path` with pidlock (real System) until
// stop() or destruction; the lock file stays behind (a crash, in effect).
class Holder {
 public:
  explicit Holder(const std::string& path);
  ~Holder();
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  void stop();

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool ok_ = false;
};

// A live process that does nothing (for foreign records naming a live pid),
// with `cwd` as its working directory if given.
class Sleeper {
 public:
  explicit Sleeper(const std::string& cwd = "");
  ~Sleeper();
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// Leaves a stale pidlock lock file at `path`: a child acquires and exits
// without releasing (its kernel lock dies with it). True on success.
bool make_stale_pidlock_file(const std::string& path);

// PostgreSQL's postmaster.pid (8 lines).
std::string postmaster_pid(long pid, const std::string& data_directory, long long start);

// Acquires `path` in a fresh child process with the real System and
// releases it; returns "" on success, else what went wrong. `took_over`
// receives whether the child took over a stale lock.
std::string acquire_in_child(const std::string& path, bool* took_over = nullptr);

// Inspects `path` from a fresh child process; returns the verdict, or
// -1 on error.
int inspect_in_child(const std::string& path);

// --- the seam ---

// Installs a System for the life of a scope.
class ScopedSystem {
 public:
  explicit ScopedSystem(d::System* s) : previous_(d::set_system(s)) {}
  ~ScopedSystem() { d::set_system(previous_); }
  ScopedSystem(const ScopedSystem&) = delete;
  ScopedSystem& operator=(const ScopedSystem&) = delete;

 private:
  d::System* previous_;
};

enum class Call {
  kOpenat,
  kClose,
  kPread,
  kPwrite,
  kFsync,
  kFstat,
  kFstatat,
  kUnlinkat,
  kFchmod,
  kFtruncate,
  kFutimens,
  kSetCloexec,
  kOpenUnnamed,
  kLinkUnnamed,
  kLinkat,
  kTryLock,
  kQueryLock,
  kUnlock,
  kAnnounceWaiter,
  kQueryWaiters,
  kKill,
  kProcessStat,
  kProcessScan,
  kQueryFlock,
  kShmStat,
  kConnectUnix,
  kCount,
};
const char* call_name(Call c);

enum class FaultKind {
  kErrno,        // fail with `err` (-1/errno, kError for locks, false for stat)
  kShortWrite,   // pwrite writes half (at least one byte) and says so
  kZeroWrite,    // pwrite returns 0
  kUnsupported,  // try_lock/query_lock/query_waiters: kUnsupported (ENOLCK, EOPNOTSUPP)
};

// Fails the n-th call (counted from arm()) of one function.
class FaultSystem : public d::SystemWrapper {
 public:
  FaultSystem() : SystemWrapper(d::real_system()) {}

  void arm(Call call, int nth, FaultKind kind, int err) {
    counts_.fill(0);
    call_ = call;
    nth_ = nth;
    kind_ = kind;
    err_ = err;
    hit_ = false;
    armed_ = true;
  }
  void disarm() { armed_ = false; }
  bool hit() const { return hit_; }
  int count(Call c) const { return counts_[static_cast<size_t>(c)]; }

  int openat(int dd, const char* n, int f, mode_t m) override;
  int close(int fd) override;
  ssize_t pread(int fd, void* b, size_t c, off_t o) override;
  ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override;
  int fsync(int fd) override;
  int fstat(int fd, struct stat* st) override;
  int fstatat(int dd, const char* n, struct stat* st, int f) override;
  int unlinkat(int dd, const char* n, int f) override;
  int fchmod(int fd, mode_t m) override;
  int ftruncate(int fd, off_t length) override;
  int futimens(int fd, const struct timespec t[2]) override;
  int set_cloexec(int fd, bool on) override;
  int open_unnamed(int dd, mode_t m, bool c) override;
  int link_unnamed(int fd, int dd, const char* n) override;
  int linkat(int od, const char* o, int nd, const char* n) override;
  d::KernelLock try_lock(int fd) override;
  d::LockQuery query_lock(int fd) override;
  int unlock(int fd) override;
  int announce_waiter(int fd) override;
  d::LockQuery query_waiters(int fd) override;
  int kill(pid_t p, int s) override;
  bool process_stat(pid_t p, d::ProcessStat* o) override;
  int process_scan(const d::FileId* dir, const d::FileId* file, d::ProcessScan* out) override;
  d::LockQuery query_flock(int fd) override;
  int shm_stat(int id, d::SharedMemoryStat* out) override;
  int connect_unix(const char* path) override;

 private:
  // True if this call is the one to fail (and counts it).
  bool fire(Call c);

  std::array<int, static_cast<size_t>(Call::kCount)> counts_{};
  bool armed_ = false;
  Call call_ = Call::kCount;
  int nth_ = 0;
  FaultKind kind_ = FaultKind::kErrno;
  int err_ = 0;
  bool hit_ = false;
};

}  // namespace pidlock_faults

#endif  // PIDLOCK_TESTS_FAULTS_FAULT_SUPPORT_HPP
