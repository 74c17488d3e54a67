// What the pidlock program does to its own process before any command
// runs, so that a hostile start-up environment cannot turn against it.
#ifndef PIDLOCK_TOOLS_PROCESS_SETUP_HPP
#define PIDLOCK_TOOLS_PROCESS_SETUP_HPP

namespace pidlock::cli {

// Called first in main():
//  * Descriptors 0, 1 and 2 that are closed are opened on /dev/null.
//    Otherwise the lock file's descriptor could become one of them, and a
//    job that writes to its "stderr" would overwrite the lock's record.
//  * SIGPIPE is ignored: a write to a closed pipe (the start-up pipe of a
//    job killed before its exec, a closed stderr) fails with EPIPE instead
//    of killing pidlock between taking the lock and releasing it.
void prepare_process() noexcept;

// In a forked child, before exec: SIGPIPE's disposition as pidlock found
// it, so that COMMAND dies of a closed pipe as it would without pidlock.
// Async-signal-safe.
void restore_process_in_child() noexcept;

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_PROCESS_SETUP_HPP
