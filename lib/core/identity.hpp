// Who this process is, read once through the OS seam, and the record that
// names a process: what a verdict compares a lock record with, and what a
// new holder writes.
#ifndef PIDLOCK_CORE_IDENTITY_HPP
#define PIDLOCK_CORE_IDENTITY_HPP

#include <pidlock/holder_record.hpp>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace pidlock::detail {

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

// make_record(self_identity(), getpid()), without copying the identity: the
// record every acquire starts from.
HolderRecord own_record();

}  // namespace pidlock::detail

#endif  // PIDLOCK_CORE_IDENTITY_HPP
