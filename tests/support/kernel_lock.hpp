// The kernel-lock state of a lock file, as another process would see it:
// pidlock holds an open-file-description (OFD) lock on byte 0 while it
// holds the lock, and a waiter announces itself with a shared OFD lock on
// byte 1 (docs/how-it-works.md). Queried with F_OFD_GETLK through a new
// descriptor, so locks of this process's other descriptions count too.
#ifndef PIDLOCK_TESTS_SUPPORT_KERNEL_LOCK_HPP
#define PIDLOCK_TESTS_SUPPORT_KERNEL_LOCK_HPP

#include <sys/types.h>

#include <string>

namespace pidlock_test {

// Does any open file description lock byte `byte` of the file? Fails the
// current test if the file cannot be opened or queried.
bool byte_locked(const std::string& path, off_t byte);
// The same through a descriptor of the file (which may have lost its name);
// the descriptor's own description's locks do not count.
bool byte_locked(int fd, off_t byte);
// Is the holder's kernel lock (byte 0) held?
inline bool kernel_lock_held(const std::string& path) { return byte_locked(path, 0); }
// Does a waiter announce itself (a shared lock on byte 1)?
inline bool waiter_announced(const std::string& path) { return byte_locked(path, 1); }

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_KERNEL_LOCK_HPP
