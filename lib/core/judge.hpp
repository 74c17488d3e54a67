// The verdict logic: from a parsed record and the kernel-lock evidence to
// held / stale / free / unknown with a reason. Pure apart from the process
// probes, which go through the seam (kill(pid, 0) and the process's stat).
#ifndef PIDLOCK_CORE_JUDGE_HPP
#define PIDLOCK_CORE_JUDGE_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include "core/identity.hpp"
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

// Judges a lock file. `parsed` is its content; `kernel` the kernel-lock
// evidence. Never throws except std::bad_alloc.
// `describe_holder_pid`: for a lock held by the kernel lock, also probe the
// recorded pid for the detail sentence (two system calls a waiter skips).
// `written_at`: when the file's content last changed (its mtime, epoch
// seconds; 0 if unknown), the write time of a record that holds none
// (pid 1 of a container, see judge.cpp).
// A stale verdict from the pid rules is not final: file/signs_of_life.hpp
// looks for evidence that the lock is still in use.
Inspection judge(const ParsedRecord& parsed, KernelEvidence kernel,
                 const JudgeOptions& options, const SelfIdentity& self,
                 bool describe_holder_pid = true, std::int64_t written_at = 0);

// One line describing a record for people: "pid 42 on host h, started
// 2026-11-27 04:15:00 UTC, status ready, data directory /srv/db".
std::string describe_holder(const HolderRecord& record);

// "2026-11-27 04:15:00 UTC".
std::string format_time(std::int64_t epoch_seconds);

}  // namespace pidlock::detail

#endif  // PIDLOCK_CORE_JUDGE_HPP
