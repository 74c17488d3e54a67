// Showing a verdict and its evidence, to people and to programs.
#ifndef PIDLOCK_TOOLS_INSPECTION_OUTPUT_HPP
#define PIDLOCK_TOOLS_INSPECTION_OUTPUT_HPP

#include "lock_holders.hpp"

#include <pidlock/inspection.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pidlock::cli {

// "2026-11-27 04:15:00 UTC".
std::string format_time(std::int64_t epoch_seconds);

// One line naming the holder: "pid 4242, started 2026-11-27 04:15:00 UTC,
// data directory /srv/db, host db1, status running". Empty without a record.
std::string holder_summary(const Inspection& inspection);

// The verdict and every piece of evidence, one per line, for
// `pidlock status`. `holders`: the processes found holding the kernel lock
// (lock_holders.hpp), or null if nobody looked.
std::string describe_inspection(const std::string& path, const Inspection& inspection,
                                const std::vector<LockHolder>* holders = nullptr);

// The same as one JSON object, for `pidlock status --json`. Every key is
// always present; those without a value are null. See docs/pidlock.1.
std::string inspection_json(const std::string& path, const Inspection& inspection,
                            const std::vector<LockHolder>* holders = nullptr);

// For a lock held by its kernel lock, but not by the recorded pid: " (held
// by pid 4243 (sleep), which inherited the lock)", found in /proc; else "".
std::string inheritors_note(const std::string& path, const Inspection& inspection);

// The JSON object for an inspection that failed with `error`.
std::string error_json(const std::string& path, const std::string& error);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_INSPECTION_OUTPUT_HPP
