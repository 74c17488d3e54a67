// Which processes hold a lock file's kernel lock, found in /proc.
//
// A kernel lock names no process: an open-file-description lock belongs to
// the description, which every process that inherited the descriptor
// shares. When the recorded holder is gone but the lock is still held (a
// job's background child kept the descriptor `pidlock run` passed on),
// these name the processes that keep it. Best effort: processes of other
// users are invisible without privileges, and a process may come or go
// while /proc is read.
#ifndef PIDLOCK_TOOLS_LOCK_HOLDERS_HPP
#define PIDLOCK_TOOLS_LOCK_HOLDERS_HPP

#include <sys/types.h>

#include <string>
#include <vector>

namespace pidlock::cli {

struct LockHolder {
  pid_t pid = -1;
  std::string command;  // /proc/PID/comm
};

// Processes with a descriptor on the file at `path` whose description
// holds the holder's kernel lock (an exclusive OFD lock from byte 0).
std::vector<LockHolder> kernel_lock_holders(const std::string& path);

// The kernel_lock_holders() whose description never announced a waiter:
// those that share a holder's description (inherited it), not a waiter
// the lock was just handed to -- whose record may not be written yet.
std::vector<LockHolder> inheritors_holding(const std::string& path);

// "pid 4242 (sleep), pid 4243 (sh)".
std::string describe(const std::vector<LockHolder>& holders);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_LOCK_HOLDERS_HPP
