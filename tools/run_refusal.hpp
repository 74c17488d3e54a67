// What `pidlock run` says when it does not run COMMAND because the lock is
// held: worded for a job lock (cron, scripts) rather than for a daemon.
#ifndef PIDLOCK_TOOLS_RUN_REFUSAL_HPP
#define PIDLOCK_TOOLS_RUN_REFUSAL_HPP

#include "run_arguments.hpp"

#include <pidlock/inspection.hpp>

#include <string>

namespace pidlock::cli {

// "not running "backup.sh": lock "/var/lock/backup.lock" is held by pid
// 4242 (started 2026-11-27 04:15:00 UTC, host db1, status running) [held:
// a process holds the kernel lock on the file]", with the reason for
// waiting no longer in front after a timeout, and a hint when the verdict
// is unknown. The data directory is named only when it is not the lock
// file's own folder (that is, when --data-dir or a daemon chose it).
std::string refusal_message(const RunArguments& args, const Inspection& holder);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_RUN_REFUSAL_HPP
