// The process's table of held lock files, keyed by device and inode.
//
// Kernel locks alone cannot tell "held by another process" from "held by
// this process through another handle" in a useful way, and a second
// acquire from the same process must fail with a clear error rather than
// report itself as a foreign holder (or, worse, break its own lock). Like
// LevelDB's PosixLockTable, this table answers that question in-process.
// It also remembers which thread acquired each lock: a waiting acquire from
// another thread waits its turn like another process would, while the
// acquiring thread asking again is refused (it would wait for itself).
// After fork() the child's copy describes its parent's locks, not its own:
// the table remembers the pid that filled it and starts empty in a child.
#ifndef PIDLOCK_FILE_PROCESS_TABLE_HPP
#define PIDLOCK_FILE_PROCESS_TABLE_HPP

#include <sys/types.h>

namespace pidlock::detail {

// Who in this process holds a lock file.
enum class TableEntry {
  kAbsent,       // not this process
  kThisThread,   // the calling thread acquired it
  kOtherThread,  // another thread of this process did
};

// Adds (dev, ino) for the calling thread; false if this process already
// holds it.
bool table_insert(dev_t dev, ino_t ino);
void table_erase(dev_t dev, ino_t ino);
TableEntry table_lookup(dev_t dev, ino_t ino);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_PROCESS_TABLE_HPP
