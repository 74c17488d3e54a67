// Facts about processes and this machine, read from /proc by the tests
// themselves: what the library concludes is checked against them, not
// against its own readings.
#ifndef PIDLOCK_TESTS_SUPPORT_PROC_HPP
#define PIDLOCK_TESTS_SUPPORT_PROC_HPP

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_test {

// /proc/PID/stat, read past the command name (which may hold spaces and
// parentheses). They fail the current test if the process is gone.
std::uint64_t proc_start_ticks(pid_t pid);  // field 22
pid_t proc_parent(pid_t pid);               // field 4
char proc_state(pid_t pid);                 // field 3
// CPU time (user + system, fields 14 and 15), nullopt if the process is
// gone.
std::optional<std::chrono::milliseconds> cpu_time(pid_t pid);

std::int64_t boot_time();                  // btime of /proc/stat
std::int64_t proc_start_epoch(pid_t pid);  // btime + start ticks / CLK_TCK
std::string boot_id();                     // /proc/sys/kernel/random/boot_id
std::string hostname();
// The inode of a /proc/PID/ns/pid link: which pid namespace.
std::uint64_t pid_namespace_inode(const std::string& proc_ns_path);
// Is this process in the initial pid namespace (inode PROC_PID_INIT_INO),
// whose pid 1 is the machine's init? (In a container, pid 1 is the
// container's own first process, which may well hold a lock.)
bool in_initial_pid_namespace();
pid_t current_tid();
// The threads of `pid` (/proc/PID/task); empty if the process is gone.
std::vector<pid_t> proc_tasks(pid_t pid);
// Context switches of the threads `tids` of `pid`, voluntary and not
// (summed from /proc/PID/task/TID/status): how often they were woken or
// preempted. A thread that is gone counts 0.
std::uint64_t context_switches(pid_t pid, const std::vector<pid_t>& tids);

std::int64_t now();           // epoch seconds
std::int64_t monotonic_ms();  // CLOCK_MONOTONIC, comparable across processes
long long monotonic_ns();

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_PROC_HPP
