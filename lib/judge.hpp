// The verdict logic: from a parsed record and the kernel-lock evidence to
// held / stale / free / unknown with a reason. Pure apart from the process
// probes, which go through the seam (kill(pid, 0) and the process's stat).
#ifndef PIDLOCK_JUDGE_HPP
#define PIDLOCK_JUDGE_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include "posix/system.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace pidlock::detail {

// What the kernel lock told us about the file.
enum class KernelEvidence {
  kHeld,  // another open file description holds the lock
  kFree,  // nobody holds it (we may have taken it)
  kNone,  // no locks on this file system: no evidence
};

// Who this process is, for comparison with a record.
struct SelfIdentity {
  pid_t pid = 0;
  pid_t parent = 0;
  std::uint64_t start_ticks = 0;       // 0 if unknown
  std::int64_t start_time = 0;         // epoch seconds, 0 if unknown
  std::string boot_id;                 // empty if unknown
  std::optional<std::uint64_t> pid_namespace;
  std::string host;
  std::int64_t boot_time = 0;          // epoch seconds, 0 if unknown
  long ticks_per_second = 100;
  pid_t pid_max = 4194304;
};

// This process's identity, cached per process (recomputed after fork and
// when the System is replaced). The parent pid, which changes when the
// parent dies, is asked for each time, unless `with_parent` is false
// (writing a record needs no parent; `parent` is then 0).
SelfIdentity self_identity(bool with_parent = true);

// The epoch start time of a process started `ticks` after boot, or 0.
std::int64_t start_epoch(const SelfIdentity& self, std::uint64_t ticks);

// A pidlock record naming `pid` (its identity read through the seam), for
// this machine and boot.
HolderRecord make_record(const SelfIdentity& self, pid_t pid);

// Judges a lock file. `parsed` is its content; `kernel` the kernel-lock
// evidence. Never throws except std::bad_alloc.
// `describe_holder_pid`: for a lock held by the kernel lock, also probe the
// recorded pid for the detail sentence (two system calls a waiter skips).
Inspection judge(const ParsedRecord& parsed, KernelEvidence kernel,
                 const JudgeOptions& options, const SelfIdentity& self,
                 bool describe_holder_pid = true);

// One line describing a record for people: "pid 42 on host h, started
// 2026-11-27 04:15:00 UTC, status ready, data directory /srv/db".
std::string describe_holder(const HolderRecord& record);

// "2026-11-27 04:15:00 UTC".
std::string format_time(std::int64_t epoch_seconds);

}  // namespace pidlock::detail

#endif  // PIDLOCK_JUDGE_HPP
