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

// The pid rules of PostgreSQL, made exact, for records without kernel-lock
// evidence.
Inspection judge_by_pid(const HolderRecord& rec, const JudgeOptions& options,
                        const SelfIdentity& self) {
  if (!rec.host.empty() && !self.host.empty() && rec.host != self.host) {
    return verdict(Verdict::kUnknown, Reason::kOtherHost,
                   "the lock was written on host \"" + rec.host + "\", not on this host (\"" +
                       self.host + "\"); its holder cannot be checked from here");
  }
  if (!rec.boot_id.empty() && !self.boot_id.empty() && rec.boot_id != self.boot_id) {
    return verdict(Verdict::kStale, Reason::kOtherBoot,
                   "the lock was written during another boot (boot id " + rec.boot_id + ")");
  }
  if (rec.pid_namespace && self.pid_namespace && *rec.pid_namespace != *self.pid_namespace) {
    return verdict(Verdict::kUnknown, Reason::kOtherPidNamespace,
                   pid_text(rec.pid) + " was recorded in another pid namespace (" +
                       std::to_string(*rec.pid_namespace) +
                       ") and the file carries no kernel lock evidence");
  }
  if (rec.pid > self.pid_max) {
    return verdict(Verdict::kStale, Reason::kPidImpossible,
                   pid_text(rec.pid) + " cannot exist: pid_max is " + std::to_string(self.pid_max));
  }

  ProcessStat st;
  bool have_stat = sys().process_stat(rec.pid, &st);
  // Did the process now named by this pid start after the record was
  // written? Then it is not the process that wrote it.
  auto started_later = [&]() -> bool {
    if (!have_stat) return false;
    if (rec.process_start_ticks && (rec.boot_id.empty() || rec.boot_id == self.boot_id))
      return st.start_ticks != *rec.process_start_ticks;
    std::int64_t began = start_epoch(self, st.start_ticks);
    // Subtract on our side: the record's start time is untrusted and may be
    // near INT64_MAX (found by the fuzzer).
    return began != 0 && rec.start_time > 0 && began - kStartTolerance > rec.start_time;
  };
  auto started_text = [&]() {
    std::int64_t began = start_epoch(self, st.start_ticks);
    return began ? "started " + format_time(began) : std::string("started later");
  };

  bool own = rec.pid == self.pid || rec.pid == self.parent ||
             std::find(options.own_pids.begin(), options.own_pids.end(), rec.pid) !=
                 options.own_pids.end();
  if (own) {
    // PostgreSQL treats these pids as stale outright: after a reboot or a
    // container restart the old holder's pid is often our own or our
    // parent's. We require proof that it is another incarnation.
    std::string who = rec.pid == self.pid ? "this process" : rec.pid == self.parent ? "our parent" : "a pid we were told is ours";
    if (started_later()) {
      return verdict(Verdict::kStale, Reason::kOwnIncarnation,
                     pid_text(rec.pid) + " is " + who + ", which " + started_text() +
                         ", after the lock was written: another incarnation wrote it");
    }
    return verdict(Verdict::kUnknown, Reason::kOwnProcessUnproven,
                   pid_text(rec.pid) + " is " + who +
                       " and nothing shows that another incarnation wrote the lock");
  }

  int rc = sys().kill(rec.pid, 0);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && err == ESRCH) {
    return verdict(Verdict::kStale, Reason::kPidDead, pid_text(rec.pid) + " does not exist");
  }
  if (rc != 0 && err != EPERM) {
    return verdict(Verdict::kUnknown, Reason::kProbeFailed,
                   "kill(" + std::to_string(rec.pid) + ", 0) failed: " + std::strerror(err));
  }
  if (have_stat && (st.state == 'Z' || st.state == 'X')) {
    return verdict(Verdict::kStale, Reason::kZombie,
                   pid_text(rec.pid) + " is a zombie: it has exited and waits to be reaped by pid " +
                       std::to_string(st.parent));
  }
  if (started_later()) {
    return verdict(Verdict::kStale, Reason::kPidReused,
                   pid_text(rec.pid) + " now names a process that " + started_text() +
                       ", after the lock was written at " + format_time(rec.start_time));
  }
  if (err == EPERM) {
    if (options.permission_denied == PermissionDeniedPolicy::kAssumeDead) {
      return verdict(Verdict::kStale, Reason::kPidDeadOtherUser,
                     pid_text(rec.pid) + " belongs to another user (EPERM); policy: not a competitor");
    }
    return verdict(Verdict::kHeld, Reason::kPidAliveOtherUser,
                   pid_text(rec.pid) + " is alive and belongs to another user (EPERM)");
  }
  return verdict(Verdict::kHeld, Reason::kPidAlive, pid_text(rec.pid) + " is alive");
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

Inspection judge(const ParsedRecord& parsed, KernelEvidence kernel,
                 const JudgeOptions& options, const SelfIdentity& self, bool describe_holder_pid) {
  Inspection out;
  const bool have = parsed.record.has_value();
  if (kernel == KernelEvidence::kHeld) {
    out = verdict(Verdict::kHeld, Reason::kKernelLockHeld,
                  "a process holds the kernel lock on the file");
    if (describe_holder_pid && have && parsed.record->format == RecordFormat::kPidlock) {
      // Not needed for the verdict, but a person wants to know whether the
      // recorded pid is the process holding it.
      Inspection by_pid = judge_by_pid(*parsed.record, options, self);
      out.detail += "; recorded " + by_pid.detail;
    }
  } else if (!have && parsed.implausible) {
    // A file no lock writer could have produced (binary, or larger than any
    // record) may be somebody's data at a mistyped lock path: never stale.
    out = verdict(Verdict::kUnknown, Reason::kUnreadable,
                  "the file cannot be a lock record (" + parsed.problem +
                      "); it is left alone: check the lock path, and remove the file by hand if it is junk");
  } else if (kernel == KernelEvidence::kFree && !have) {
    out = parsed.empty
              ? verdict(Verdict::kStale, Reason::kEmptyFile,
                        "the file is empty and no process holds its kernel lock")
              : verdict(Verdict::kStale, Reason::kUnparsable,
                        "the record cannot be read (" + parsed.problem +
                            ") and no process holds its kernel lock");
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
    out = judge_by_pid(*parsed.record, options, self);
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
