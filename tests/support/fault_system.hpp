// Faults through the operating-system seam (lib/posix/system.hpp, STYLE.md
// point 7): one System that fails chosen calls, shortens writes, says "no
// kernel locks here", runs the clock ahead, or ends the process at a
// chosen checkpoint (a crash between two steps). Every other call goes to
// the real system.
#ifndef PIDLOCK_TESTS_SUPPORT_FAULT_SYSTEM_HPP
#define PIDLOCK_TESTS_SUPPORT_FAULT_SYSTEM_HPP

#include "posix/system.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace pidlock_test {

namespace d = pidlock::detail;

// Makes `replacement` (nullptr: the real system) the library's System for
// the life of a scope.
class ScopedSystem {
 public:
  explicit ScopedSystem(d::System* replacement) : previous_(d::set_system(replacement)) {}
  ~ScopedSystem() { d::set_system(previous_); }
  ScopedSystem(const ScopedSystem&) = delete;
  ScopedSystem& operator=(const ScopedSystem&) = delete;

 private:
  d::System* previous_;
};

// The seam's calls that a FaultSystem can fail.
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
  kFchown,
  kFtruncate,
  kFutimens,
  kSetCloexec,
  kTryLock,
  kWaitLock,
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
  kSendDatagram,
  kCount,
};
const char* call_name(Call c);

enum class FaultKind {
  kErrno,         // fail with `err`: -1 and errno; kError for the lock calls; false for process_stat
  kShortWrite,    // pwrite writes half (at least one byte) and says so
  kTrickleWrite,  // pwrite writes one byte and says so
  kZeroWrite,     // pwrite returns 0: no progress, no errno
  kUnsupported,   // try_lock and the lock queries: "no kernel locks here"
};

// How a process dies at a checkpoint.
enum class Death { kExit, kSigkill };
// The exit status of Death::kExit.
inline constexpr int kDiedAtStep = 77;
// arm()'s `times` for "every call from the nth on".
inline constexpr int kEveryCall = std::numeric_limits<int>::max();

class FaultSystem : public d::SystemWrapper {
 public:
  FaultSystem() : SystemWrapper(d::real_system()) {}

  // Fails calls `nth` to `nth + times - 1` of `call`, counted from now, as
  // `kind` says. Replaces what was armed before and restarts the counts.
  void arm(Call call, int nth, FaultKind kind, int err, int times = 1);
  // No more armed faults (those of always() stay).
  void disarm() { armed_ = false; }
  // Did an armed fault fire since arm(), and how often?
  bool hit() const { return hits_ > 0; }
  int hits() const { return hits_; }
  // Calls of `c` since arm().
  int count(Call c) const { return counts_[static_cast<size_t>(c)]; }

  // Every call of `call` fails from now on, armed or not: the file system
  // as it is (no O_TMPFILE, no kernel locks).
  void always(Call call, FaultKind kind, int err = 0);
  // now() runs `seconds` ahead of the real clock.
  void advance_clock(std::int64_t seconds) { clock_offset_ = seconds; }

  // From now on, counts the checkpoints passed and dies at number `index`
  // (0: the next one; -1: never); each checkpoint passed before that is
  // written to `report_fd` as a line (when report_fd >= 0).
  void crash_at(int index, Death death, int report_fd = -1);
  // Dies at the next pass of the checkpoint named `step`.
  void crash_at(const std::string& step, Death death = Death::kExit);
  // Checkpoints pass again without effect.
  void no_crash() { crash_armed_ = false; }

  int openat(int dd, const char* n, int f, mode_t m) override;
  int close(int fd) override;
  ssize_t pread(int fd, void* b, size_t c, off_t o) override;
  ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override;
  int fsync(int fd) override;
  int fstat(int fd, struct stat* st) override;
  int fstatat(int dd, const char* n, struct stat* st, int f) override;
  int unlinkat(int dd, const char* n, int f) override;
  int fchmod(int fd, mode_t m) override;
  int fchown(int fd, uid_t u, gid_t g) override;
  int ftruncate(int fd, off_t length) override;
  int futimens(int fd, const struct timespec t[2]) override;
  int set_cloexec(int fd, bool on) override;
  d::KernelLock try_lock(int fd) override;
  int wait_lock(int fd) override;
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
  ssize_t send_datagram(const char* address, const void* data, size_t size) override;
  std::int64_t now() override { return SystemWrapper::now() + clock_offset_; }
  void checkpoint(const char* step) override;

 private:
  struct Fault {
    FaultKind kind = FaultKind::kErrno;
    int err = 0;
  };
  // The fault this call of `c` must suffer, if any (and counts the call).
  std::optional<Fault> due(Call c);
  // For calls that fail with -1 and errno: true (errno set) if this one must.
  bool fails(Call c);
  static d::LockQuery query_fault(const Fault& f);

  std::array<int, static_cast<size_t>(Call::kCount)> counts_{};
  std::array<std::optional<Fault>, static_cast<size_t>(Call::kCount)> always_{};
  bool armed_ = false;
  Call call_ = Call::kCount;
  int first_ = 0, last_ = 0;
  Fault fault_;
  int hits_ = 0;
  std::int64_t clock_offset_ = 0;

  bool crash_armed_ = false;
  int crash_index_ = -1;
  std::string crash_step_;
  Death death_ = Death::kExit;
  int report_fd_ = -1;
  int seen_ = 0;
};

// A file system without kernel locks (as some NFS and FUSE mounts): every
// lock call says "unsupported" (ENOLCK), so only pid evidence is left.
class NoKernelLocksSystem : public FaultSystem {
 public:
  NoKernelLocksSystem();
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_FAULT_SYSTEM_HPP
