// Positive evidence of life, looked for before a lock without pidlock's
// kernel-lock evidence is called stale.
//
// judge() decides from the record: a dead pid, a zombie, a reused pid, an
// impossible holder, an empty file. None of that proves that nobody uses
// the lock: PostgreSQL backends outlive a SIGKILLed postmaster, a server
// in another pid namespace has a pid that means nothing here, a flock(1)
// or Python filelock holder writes no pid at all, and a clock stepped
// forward makes a live holder look younger than its record. So a stale
// verdict of that kind stands only when none of these signs is found (the
// table in docs/guide.md, "Signs of life"):
//
//   sign                                          verdict
//   a flock() lock held on the file               held (flock-held)
//   PostgreSQL line 7: segment with attachments   held (shared-memory-attached)
//   PostgreSQL lines 4-5: a server on the socket  held (socket-listening)
//   another process has the lock file open        held (lock-file-open)
//   PostgreSQL line 2: a process works there      held (data-directory-in-use)
//   one of the above cannot be read (EACCES, ...) unknown (probe-failed)
//
// This process and its ancestors are never counted: they are not
// competitors (PostgreSQL's rule for its parent and grandparent), and an
// administrator's shell often sits in the data directory.
#ifndef PIDLOCK_FILE_SIGNS_OF_LIFE_HPP
#define PIDLOCK_FILE_SIGNS_OF_LIFE_HPP

#include <pidlock/inspection.hpp>

#include <sys/stat.h>

namespace pidlock::detail {

// Is `insp` (a verdict of judge()) stale on evidence other than a pidlock
// holder's free kernel lock, so that signs of life must be looked for
// before it stands?
bool needs_signs_of_life(const Inspection& insp);

// Looks for the signs above. `fd` is an open descriptor of the lock file
// (read-only will do) and `st` its fstat. Turns `insp` into held, naming
// the sign, or into unknown when a sign could not be read; leaves it stale
// otherwise. All system calls go through the seam (posix/system.hpp).
void look_for_signs_of_life(int fd, const struct stat& st, Inspection& insp);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_SIGNS_OF_LIFE_HPP
