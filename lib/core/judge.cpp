#include "core/judge.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

namespace pidlock::detail {
namespace {

// A process whose start, computed from boot time and clock ticks, lies
// more than this after the record's start time cannot be the holder that
// wrote it. The computed start can be off by the rounding of btime (one
// second) and clock adjustments; three seconds covers both, and a reused
// pid is almost always minutes or boots away.
constexpr std::int64_t kStartTolerance = 3;

Inspection verdict(Verdict v, Reason r, std::string detail) {
  Inspection i;
  i.verdict = v;
  i.reason = r;
  i.detail = std::move(detail);
  return i;
}

std::string pid_text(pid_t pid) { return "pid " + std::to_string(pid); }

// The inode number of the initial pid namespace (PROC_PID_INIT_INO, fixed
// by the kernel): its pid 1 is the machine's init.
constexpr std::uint64_t kInitialPidNamespace = 0xEFFFFFFCu;

// The pid rules of PostgreSQL, made exact, for records without kernel-lock
// evidence. Policy, in order (docs/guide.md, "How a holder is judged"):
//  1. A record of another host, boot or pid namespace is judged by that
//     alone: another host or namespace is unknown (its pid means nothing
//     here), another boot is stale (its processes are all gone).
//  2. A pid no process can have here (0, above pid_max) and pid 1 of the
//     initial namespace (init, which holds no lock file) say nothing about
//     the holder: stale, unless signs of life are found (signs_of_life.cpp).
//  3. A plain pid file's line 2 must be this host or the program the pid
//     now runs; otherwise it may name another host: unknown.
//  4. Our own pid, our parent's and listed pids are unknown unless the
//     process now using the pid provably started after the record.
//  5. Otherwise kill(pid, 0): ESRCH is dead, a zombie is dead, a process
//     that started after the record is a reused pid (start ticks are exact;
//     epoch times only count with corroboration, see signs_of_life.cpp);
//     EPERM follows the caller's policy; any other error is unknown.
class PidRules {
 public:
  PidRules(const HolderRecord& rec, const JudgeOptions& options, const SelfIdentity& self,
           std::int64_t written_at)
      : rec_(rec), options_(options), self_(self), written_at_(written_at) {}

  Inspection judge() {
    if (std::optional<Inspection> i = elsewhere()) return *i;
    if (std::optional<Inspection> i = impossible()) return *i;
    have_stat_ = sys().process_stat(rec_.pid, &st_);
    if (std::optional<Inspection> i = label_elsewhere()) return *i;
    if (std::optional<Inspection> i = own()) return *i;
    if (std::optional<Inspection> i = machine_init()) return *i;
    return liveness();
  }

 private:
  // Rule 1.
  std::optional<Inspection> elsewhere() const {
    if (!rec_.host.empty() && !self_.host.empty() && rec_.host != self_.host) {
      return verdict(Verdict::kUnknown, Reason::kOtherHost,
                     "the lock was written on host \"" + rec_.host + "\", not on this host (\"" + self_.host +
                         "\"); its holder cannot be checked from here");
    }
    if (!rec_.boot_id.empty() && !self_.boot_id.empty() && rec_.boot_id != self_.boot_id) {
      return verdict(Verdict::kStale, Reason::kOtherBoot,
                     "the lock was written during another boot (boot id " + rec_.boot_id + ")");
    }
    if (rec_.pid_namespace && self_.pid_namespace && *rec_.pid_namespace != *self_.pid_namespace) {
      return verdict(Verdict::kUnknown, Reason::kOtherPidNamespace,
                     pid_text(rec_.pid) + " was recorded in another pid namespace (" +
                         std::to_string(*rec_.pid_namespace) + ") and the file carries no kernel lock evidence");
    }
    return std::nullopt;
  }

  // Rule 2, for pids no process can have. Never given to kill(): 0 would
  // signal our process group.
  std::optional<Inspection> impossible() const {
    if (rec_.pid <= 0)
      return verdict(Verdict::kStale, Reason::kPidImpossible, "pid 0 names no process: no holder can be using it");
    if (rec_.pid > self_.pid_max) {
      return verdict(Verdict::kStale, Reason::kPidImpossible,
                     pid_text(rec_.pid) + " cannot exist: pid_max is " + std::to_string(self_.pid_max));
    }
    return std::nullopt;
  }

  // Rule 2, for pid 1 of the initial namespace. A record with start ticks
  // can prove who pid 1 is, and goes on to the usual rules.
  std::optional<Inspection> machine_init() const {
    if (rec_.pid != 1 || rec_.process_start_ticks || self_.pid_namespace != kInitialPidNamespace)
      return std::nullopt;
    return verdict(Verdict::kStale, Reason::kPidImpossible,
                   "pid 1 is this machine's init, which holds no lock file (kill() cannot tell whether the "
                   "holder lives)");
  }

  // Rule 3.
  std::optional<Inspection> label_elsewhere() const {
    const std::string& label = rec_.label;
    if (label.empty() || label == self_.host || label.find('/') != std::string::npos) return std::nullopt;
    // comm is the program's name cut to 15 bytes.
    if (have_stat_ && !st_.name.empty() && label.compare(0, 15, st_.name) == 0) return std::nullopt;
    return verdict(Verdict::kUnknown, Reason::kOtherHost,
                   "line 2 names \"" + label + "\", which is neither this host (\"" + self_.host +
                       "\") nor the program running as " + pid_text(rec_.pid) +
                       (have_stat_ ? " (\"" + st_.name + "\")" : std::string(" (none)")) +
                       ": it may be another host's lock, whose holder cannot be checked from here");
  }

  // When did the holder start, by the clock? The record's start time, or
  // for pid 1 (which every container restart reuses) the file's last
  // change: a pid 1 that started after it did not write it. 0: unknown.
  std::int64_t holder_started() const {
    if (rec_.start_time > 0) return rec_.start_time;
    return rec_.pid == 1 ? written_at_ : 0;
  }

  // Did the process now named by this pid start after the record was
  // written? Then it is not the process that wrote it.
  bool started_later() const {
    if (!have_stat_) return false;
    if (rec_.process_start_ticks && (rec_.boot_id.empty() || rec_.boot_id == self_.boot_id))
      return st_.start_ticks != *rec_.process_start_ticks;
    std::int64_t began = start_epoch(self_, st_.start_ticks);
    // Subtract on our side: the record's start time is untrusted and may be
    // near INT64_MAX (found by the fuzzer).
    std::int64_t recorded = holder_started();
    return began != 0 && recorded > 0 && began - kStartTolerance > recorded;
  }

  std::string started_text() const {
    std::int64_t began = start_epoch(self_, st_.start_ticks);
    return began ? "started " + format_time(began) : std::string("started later");
  }

  // Rule 4.
  std::optional<Inspection> own() const {
    const pid_t pid = rec_.pid;
    const auto& listed = options_.own_pids;
    if (pid != self_.pid && pid != self_.parent && std::find(listed.begin(), listed.end(), pid) == listed.end())
      return std::nullopt;
    // PostgreSQL treats these pids as stale outright: after a reboot or a
    // container restart the old holder's pid is often our own or our
    // parent's. We require proof that it is another incarnation.
    std::string who = pid == self_.pid ? "this process" : pid == self_.parent ? "our parent" : "a pid we were told is ours";
    if (started_later()) {
      return verdict(Verdict::kStale, Reason::kOwnIncarnation,
                     pid_text(pid) + " is " + who + ", which " + started_text() +
                         ", after the lock was written: another incarnation wrote it");
    }
    return verdict(Verdict::kUnknown, Reason::kOwnProcessUnproven,
                   pid_text(pid) + " is " + who + " and nothing shows that another incarnation wrote the lock");
  }

  // Rule 5.
  Inspection liveness() const {
    const pid_t pid = rec_.pid;
    int rc = sys().kill(pid, 0);
    int err = rc == 0 ? 0 : errno;
    if (rc != 0 && err == ESRCH) return verdict(Verdict::kStale, Reason::kPidDead, pid_text(pid) + " does not exist");
    if (rc != 0 && err != EPERM) {
      return verdict(Verdict::kUnknown, Reason::kProbeFailed,
                     "kill(" + std::to_string(pid) + ", 0) failed: " + std::strerror(err));
    }
    if (have_stat_ && (st_.state == 'Z' || st_.state == 'X')) {
      return verdict(Verdict::kStale, Reason::kZombie,
                     pid_text(pid) + " is a zombie: it has exited and waits to be reaped by pid " +
                         std::to_string(st_.parent));
    }
    if (started_later()) {
      const std::int64_t recorded = holder_started();
      return verdict(Verdict::kStale, Reason::kPidReused,
                     pid_text(pid) + " now names a process that " + started_text() + ", after the lock was " +
                         (rec_.process_start_ticks ? std::string("written (its start ticks differ)")
                                                   : "written at " + format_time(recorded)));
    }
    if (err == EPERM) {
      if (options_.permission_denied == PermissionDeniedPolicy::kAssumeDead) {
        return verdict(Verdict::kStale, Reason::kPidDeadOtherUser,
                       pid_text(pid) + " belongs to another user (EPERM); policy: not a competitor");
      }
      return verdict(Verdict::kHeld, Reason::kPidAliveOtherUser,
                     pid_text(pid) + " is alive and belongs to another user (EPERM)");
    }
    return verdict(Verdict::kHeld, Reason::kPidAlive, pid_text(pid) + " is alive");
  }

  const HolderRecord& rec_;
  const JudgeOptions& options_;
  const SelfIdentity& self_;
  const std::int64_t written_at_;
  ProcessStat st_;
  bool have_stat_ = false;
};

Inspection judge_by_pid(const HolderRecord& rec, const JudgeOptions& options, const SelfIdentity& self,
                        std::int64_t written_at) {
  return PidRules(rec, options, self, written_at).judge();
}

// Was the record written under this very kernel (this boot of this
// machine)? Containers share the kernel and its boot id but not the host
// name, so the boot id decides; the host name only when a boot id is
// missing.
bool same_kernel(const HolderRecord& rec, const SelfIdentity& self) {
  if (!rec.boot_id.empty() && !self.boot_id.empty()) return rec.boot_id == self.boot_id;
  return rec.host.empty() || self.host.empty() || rec.host == self.host;
}

}  // namespace

Inspection judge(const ParsedRecord& parsed, KernelEvidence kernel, const JudgeOptions& options,
                 const SelfIdentity& self, bool describe_holder_pid, std::int64_t written_at) {
  Inspection out;
  const bool have = parsed.record.has_value();
  if (kernel == KernelEvidence::kHeld) {
    out = verdict(Verdict::kHeld, Reason::kKernelLockHeld,
                  "a process holds the kernel lock on the file");
    if (describe_holder_pid && have && parsed.record->format == RecordFormat::kPidlock) {
      // Not needed for the verdict, but a person wants to know whether the
      // recorded pid is the process holding it.
      Inspection by_pid = judge_by_pid(*parsed.record, options, self, written_at);
      out.detail += "; recorded " + by_pid.detail;
    }
  } else if (!have && parsed.implausible) {
    // Not a lock record of any layout we know (text, binary, whitespace,
    // huge, ...): perhaps somebody's data at a mistyped lock path. Never
    // stale, whatever its size and whether or not a kernel lock is held.
    out = verdict(Verdict::kUnknown, Reason::kNotALockRecord,
                  "the file is not a lock record of any layout pidlock recognises (" + parsed.problem +
                      "); pidlock never changes or removes it: check the lock path, and if it really is a "
                      "stale lock, a person must remove it");
  } else if (kernel == KernelEvidence::kFree && !have) {
    // An empty or zeroed file (no lock writer's content yet, or lost to a
    // power failure), or a damaged pidlock record: a free kernel lock says
    // no pidlock holder is behind it; signs_of_life.cpp looks for others.
    if (parsed.empty || parsed.zeroed) {
      out = verdict(Verdict::kStale, Reason::kEmptyFile,
                    std::string(parsed.empty ? "the file is empty"
                                             : "the file holds only NUL bytes (a record lost in a power failure)") +
                        " and no process holds its kernel lock");
    } else {
      out = verdict(Verdict::kStale, Reason::kUnparsable,
                    "the pidlock record is damaged (" + parsed.problem + ") and no process holds its kernel lock");
    }
  } else if (kernel == KernelEvidence::kFree && parsed.record->format == RecordFormat::kPidlock &&
             !parsed.record->without_kernel_lock && same_kernel(*parsed.record, self)) {
    // Every pidlock holder keeps the kernel lock of its file for as long as
    // it (or a process that inherited the descriptor) lives; the lock was
    // taken before the file got its name. A free lock is proof of absence,
    // across pid namespaces and containers and whatever the pid now names.
    // Only for a record written under this kernel, though: on a network
    // file system whose locks do not reach the server (NFS mounted with
    // "nolock") another machine's lock is invisible here, so its records
    // go to the pid rules, which answer "other boot" or "other host".
    out = parsed.record->status == kReleasedStatus
              ? verdict(Verdict::kStale, Reason::kReleased,
                        "holder " + pid_text(parsed.record->pid) +
                            " released the lock for a waiter, and no process holds its kernel lock yet")
              : verdict(Verdict::kStale, Reason::kKernelLockFree,
                        "no process holds the kernel lock of this pidlock record (holder " +
                            pid_text(parsed.record->pid) + " is gone)");
  } else if (!have) {
    out = verdict(Verdict::kUnknown, Reason::kUnreadable,
                  "the record cannot be read (" + parsed.problem +
                      ") and the file system gives no kernel lock evidence");
  } else {
    out = judge_by_pid(*parsed.record, options, self, written_at);
  }
  out.holder = parsed.record;
  // The verdict rests on the kernel lock unless the pid rules made it.
  out.kernel_lock_evidence = out.reason == Reason::kKernelLockHeld || out.reason == Reason::kKernelLockFree ||
                             out.reason == Reason::kReleased || out.reason == Reason::kEmptyFile ||
                             out.reason == Reason::kUnparsable;
  return out;
}

std::string format_time(std::int64_t epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(epoch_seconds);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string describe_holder(const HolderRecord& rec) {
  std::string s = (rec.single_user ? "single-user pid " : "pid ") + std::to_string(rec.pid);
  if (!rec.host.empty()) s += " on host " + rec.host;
  if (rec.start_time > 0) s += ", started " + format_time(rec.start_time);
  if (!rec.status.empty()) s += ", status " + rec.status;
  if (!rec.data_directory.empty()) s += ", data directory " + rec.data_directory;
  return s;
}

}  // namespace pidlock::detail
