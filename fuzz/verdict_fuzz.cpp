// libFuzzer target: judge() (lib/judge.hpp) over arbitrary lock-file bytes,
// each kind of kernel-lock evidence, and a fake process table.
//
// The fake System (installed with set_system) answers kill() and
// process_stat() from fuzz-derived data: no real signal is ever sent, no
// /proc is read. File calls fail with ENOSYS.
//
// Input layout: a 16-byte header, then the file's bytes.
//   [0]  kernel evidence (held / free / none)
//   [1]  kill(pid, 0): ok, ESRCH, EPERM, EINVAL, EIO, EAGAIN
//   [2]  process_stat: bit 0 readable, bits 1-3 the state letter
//   [3-6] the process's start ticks (unless [7] bit 0)
//   [7]  bit 0 start ticks equal the record's; bit 1 same host; bit 2 same
//        boot id; bit 3 same pid namespace; bit 4 EPERM policy "dead";
//        bit 5 the record's pid is listed in own_pids; bit 6 our pid is
//        the record's; bit 7 our parent is the record's pid
//   [8-9] pid_max / 64 (0: Linux's 4194304)
//   [10-13] boot time, epoch seconds
//   [14] clock ticks per second (0: 100)
//   [15] unused
//
// Properties (a violation aborts):
//  * judge never returns kFree (a file is there) and never throws;
//  * every verdict comes with a reason of its kind and a detail;
//  * a held kernel lock is always kHeld (kKernelLockHeld);
//  * holder reflects the record; kernel_lock_evidence matches a kernel
//    reason, which needs kernel evidence;
//  * G3: without kernel-lock evidence, a record whose process is alive and
//    provably the writer (same host, boot and namespace, same start ticks,
//    not our own pid) is kHeld;
//  * G3: a failed probe (kill() failing with anything but ESRCH/EPERM) never
//    yields kStale except on evidence that does not need the probe (other
//    boot, impossible pid, own pid's other incarnation);
//  * EPERM under the default policy is never "dead".
#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>

#include "core/judge.hpp"
#include "posix/system.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

namespace d = pidlock::detail;
using pidlock::Reason;
using pidlock::Verdict;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "verdict_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

// The process table the judge sees.
struct FakeProcesses {
  int kill_errno = 0;  // 0: kill succeeds
  bool have_stat = false;
  d::ProcessStat stat;
};

// Derived from SystemWrapper so that a call added to the seam later still
// compiles (and reaches the real system); every call the judge could make
// that touches files or processes is answered here.
class FakeSystem final : public d::SystemWrapper {
 public:
  FakeSystem() : SystemWrapper(d::real_system()) {}
  FakeProcesses p;

  int openat(int, const char*, int, mode_t) override { return fail(); }
  int close(int) override { return fail(); }
  ssize_t pread(int, void*, size_t, off_t) override { return fail(); }
  ssize_t pwrite(int, const void*, size_t, off_t) override { return fail(); }
  int fsync(int) override { return fail(); }
  int fstat(int, struct stat*) override { return fail(); }
  int fstatat(int, const char*, struct stat*, int) override { return fail(); }
  int unlinkat(int, const char*, int) override { return fail(); }
  int fchmod(int, mode_t) override { return fail(); }
  int fchown(int, uid_t, gid_t) override { return fail(); }
  int ftruncate(int, off_t) override { return fail(); }
  int futimens(int, const struct timespec*) override { return fail(); }
  int set_cloexec(int, bool) override { return fail(); }
  d::KernelLock try_lock(int) override {
    errno = ENOSYS;
    return d::KernelLock::kError;
  }
  d::LockQuery query_lock(int) override {
    errno = ENOSYS;
    return d::LockQuery::kError;
  }
  int unlock(int) override { return fail(); }
  int announce_waiter(int) override { return fail(); }
  d::LockQuery query_waiters(int) override {
    errno = ENOSYS;
    return d::LockQuery::kError;
  }
  int kill(pid_t, int sig) override {
    check(sig == 0, "the judge sent a real signal");
    if (p.kill_errno == 0) return 0;
    errno = p.kill_errno;
    return -1;
  }
  pid_t getpid() override { return 1; }
  pid_t getppid() override { return 1; }
  bool process_stat(pid_t, d::ProcessStat* out) override {
    if (!p.have_stat) return false;
    *out = p.stat;
    return true;
  }
  std::string boot_id() override { return {}; }
  std::optional<std::uint64_t> pid_namespace(pid_t) override { return std::nullopt; }
  std::string hostname() override { return {}; }
  std::int64_t boot_time() override { return 0; }
  long clock_ticks_per_second() override { return 100; }
  pid_t pid_max() override { return 4194304; }
  std::int64_t now() override { return 0; }

 private:
  static int fail() {
    errno = ENOSYS;
    return -1;
  }
};

FakeSystem& fake() {
  static FakeSystem* s = [] {
    auto* f = new FakeSystem;
    d::set_system(f);
    return f;
  }();
  return *s;
}

std::uint32_t u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

bool reason_fits(Verdict v, Reason r) {
  switch (r) {
    case Reason::kKernelLockHeld:
    case Reason::kPidAlive:
    case Reason::kPidAliveOtherUser:
    case Reason::kFlockHeld:
    case Reason::kLockFileOpen:
    case Reason::kDataDirectoryInUse:
    case Reason::kSharedMemoryAttached:
    case Reason::kSocketListening:
      return v == Verdict::kHeld;
    case Reason::kKernelLockFree:
    case Reason::kEmptyFile:
    case Reason::kUnparsable:
    case Reason::kPidDead:
    case Reason::kPidDeadOtherUser:
    case Reason::kZombie:
    case Reason::kPidReused:
    case Reason::kPidImpossible:
    case Reason::kOwnIncarnation:
    case Reason::kOtherBoot:
    case Reason::kReleased:
      return v == Verdict::kStale;
    case Reason::kOwnProcessUnproven:
    case Reason::kOtherHost:
    case Reason::kOtherPidNamespace:
    case Reason::kProbeFailed:
    case Reason::kUnreadable:
    case Reason::kNotALockRecord:
      return v == Verdict::kUnknown;
    case Reason::kNoLockFile:
    case Reason::kHeldByThisProcess:
    case Reason::kLeaseAlive:  // the etcd store's, not the file judge's
      return false;  // not the judge's to give
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kHeader = 16;
  if (size < kHeader) return 0;
  FakeSystem& sys = fake();
  const std::uint8_t* h = data;
  std::string_view bytes(reinterpret_cast<const char*>(data + kHeader), size - kHeader);

  static const d::KernelEvidence kEvidence[] = {d::KernelEvidence::kHeld, d::KernelEvidence::kFree,
                                                d::KernelEvidence::kNone};
  static const int kKill[] = {0, ESRCH, EPERM, EINVAL, EIO, EAGAIN};
  static const char kStates[] = "RSDZXxTI";
  const d::KernelEvidence kernel = kEvidence[h[0] % 3];
  const std::uint8_t flags = h[7];

  pidlock::ParsedRecord parsed = pidlock::parse_record(bytes);
  const pidlock::HolderRecord* rec = parsed.record ? &*parsed.record : nullptr;

  // Who we are.
  d::SelfIdentity self;
  self.pid = 77777;
  self.parent = 77776;
  self.host = "fuzzhost";
  self.boot_id = "boot-self";
  self.pid_namespace = 4026531836u;
  self.boot_time = static_cast<std::int64_t>(u32(h + 10));
  self.ticks_per_second = h[14] == 0 ? 100 : h[14];
  std::uint16_t pm = static_cast<std::uint16_t>(h[8] | h[9] << 8);
  self.pid_max = pm == 0 ? 4194304 : static_cast<pid_t>(pm) * 64;
  pidlock::JudgeOptions options;
  if (flags & 0x10) options.permission_denied = pidlock::PermissionDeniedPolicy::kAssumeDead;
  if (rec != nullptr) {
    if (flags & 0x02 && !rec->host.empty()) self.host = rec->host;
    if (flags & 0x04 && !rec->boot_id.empty()) self.boot_id = rec->boot_id;
    if (flags & 0x08 && rec->pid_namespace) self.pid_namespace = rec->pid_namespace;
    if (flags & 0x20) options.own_pids.push_back(rec->pid);
    if (flags & 0x40) self.pid = rec->pid;
    if (flags & 0x80) self.parent = rec->pid;
  }

  // What the process table says about the recorded pid.
  sys.p.kill_errno = kKill[h[1] % 6];
  sys.p.have_stat = (h[2] & 1) != 0;
  sys.p.stat.state = kStates[(h[2] >> 1) % 8];
  sys.p.stat.parent = 1;
  sys.p.stat.start_ticks = (flags & 0x01) && rec && rec->process_start_ticks ? *rec->process_start_ticks : u32(h + 3);

  pidlock::Inspection out = d::judge(parsed, kernel, options, self);

  check(out.verdict != Verdict::kFree, "judge said free for an existing file");
  check(reason_fits(out.verdict, out.reason), "reason does not fit the verdict");
  check(!out.detail.empty(), "verdict without detail");
  check(out.holder.has_value() == (rec != nullptr), "holder does not reflect the record");
  // kernel_lock_evidence says whether the verdict rests on the kernel lock
  // (inspection.hpp), so it needs kernel evidence and a kernel reason.
  const bool kernel_reason = out.reason == Reason::kKernelLockHeld || out.reason == Reason::kKernelLockFree ||
                             out.reason == Reason::kEmptyFile || out.reason == Reason::kUnparsable;
  check(out.kernel_lock_evidence == kernel_reason, "kernel_lock_evidence does not match the reason");
  if (kernel == d::KernelEvidence::kNone) check(!kernel_reason, "a kernel reason without kernel evidence");
  if (kernel == d::KernelEvidence::kHeld) check(out.verdict == Verdict::kHeld, "held kernel lock not held");
  if (kernel == d::KernelEvidence::kNone && rec == nullptr) check(out.verdict == Verdict::kUnknown, "unreadable without kernel evidence must be unknown");

  if (kernel == d::KernelEvidence::kNone && rec != nullptr) {
    const bool own = rec->pid == self.pid || rec->pid == self.parent || (flags & 0x20);
    const bool same_host = rec->host.empty() || rec->host == self.host;
    const bool same_boot = rec->boot_id.empty() || rec->boot_id == self.boot_id;
    const bool same_ns = !rec->pid_namespace || rec->pid_namespace == self.pid_namespace;
    const bool alive = sys.p.kill_errno == 0 && sys.p.have_stat && sys.p.stat.state != 'Z' &&
                       sys.p.stat.state != 'X';
    const bool is_writer = rec->process_start_ticks && sys.p.stat.start_ticks == *rec->process_start_ticks;
    if (!own && same_host && same_boot && same_ns && alive && is_writer && rec->pid <= self.pid_max)
      check(out.verdict == Verdict::kHeld, "G3: a live writer was not judged held");

    const bool probe_failed = sys.p.kill_errno != 0 && sys.p.kill_errno != ESRCH && sys.p.kill_errno != EPERM;
    if (probe_failed && out.verdict == Verdict::kStale)
      check(out.reason == Reason::kOtherBoot || out.reason == Reason::kPidImpossible ||
                out.reason == Reason::kOwnIncarnation,
            "G3: a failed liveness probe made the lock stale");
    if (sys.p.kill_errno == EPERM && options.permission_denied == pidlock::PermissionDeniedPolicy::kAssumeAlive)
      check(out.reason != Reason::kPidDeadOtherUser, "EPERM judged dead under the assume-alive policy");
    if (!sys.p.have_stat && out.verdict == Verdict::kStale)
      check(out.reason != Reason::kPidReused && out.reason != Reason::kZombie && out.reason != Reason::kOwnIncarnation,
            "a verdict needing /proc was given without it");
  }

  // The texts for people must not crash on any record (huge times, ...).
  if (rec != nullptr) (void)d::describe_holder(*rec);
  (void)d::format_time(rec != nullptr ? rec->start_time : static_cast<std::int64_t>(u32(h + 10)));
  return 0;
}
