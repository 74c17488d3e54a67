// Creating a lock file, as PostgreSQL does, at the lock's own name:
// open(O_CREAT|O_EXCL) (at most one creator wins; the others get EEXIST
// and look at the winner's file), then the kernel lock, then the record
// in one pwrite. Between the open and the lock the file is empty and
// unlocked, and while the record is written it is locked but incomplete;
// readers apply the creation rule for both (examine.hpp, "in creation").
#ifndef PIDLOCK_FILE_CREATE_HPP
#define PIDLOCK_FILE_CREATE_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "file/lock_location.hpp"

#include <sys/stat.h>

#include <string>

namespace pidlock::detail {

// The lock file this process created, locked, and holds the complete
// record of, entered in the process table. Until released (handed to a
// FileLock), its destructor takes all of it back: out of the table, and
// the name removed while our kernel lock still proves the file ours.
struct Created {
  UniqueFd fd;
  std::string written;  // the record's bytes, as written
  bool without_kernel_lock = false;
  struct stat st {};
  bool in_table = false;
  const LockLocation* loc = nullptr;  // set while the name is ours to remove

  Created() = default;
  Created(const Created&) = delete;
  Created& operator=(const Created&) = delete;
  ~Created() { reset(); }

  void reset();
  // The file is the lock's now: nothing is taken back.
  void keep() {
    in_table = false;
    loc = nullptr;
  }
};

// Creates the file at `loc`, locks it and writes `record` into it (and
// fsyncs the file when options.durable). *lost is set, with nothing
// created, when the name is taken: EEXIST, or a contender that judged our
// file before we locked it (see the creation rule) took it from us.
Failure create_at_name(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                       Created* out, bool* lost);

// Removes the hidden temporaries that versions which created lock files
// through a temporary name could leave beside the lock after a crash:
// those names of the stale inode `locked_inode`, whose kernel lock we
// hold. Returns how many names it removed.
int sweep_orphaned_temps(const LockLocation& loc, const struct stat& locked_inode);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_CREATE_HPP
