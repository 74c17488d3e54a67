// Creating a lock file: the record is written complete into an unnamed
// (O_TMPFILE) inode that is already kernel-locked, which link() then gives
// the lock's name. link() fails with EEXIST like O_CREAT|O_EXCL, so at most
// one creator wins, and no reader ever sees an empty, half-written or
// unlocked pidlock file.
#ifndef PIDLOCK_FILE_CREATE_HPP
#define PIDLOCK_FILE_CREATE_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "file/lock_location.hpp"

#include <boost/filesystem/path.hpp>

#include <sys/stat.h>

#include <string>

namespace pidlock::detail {

// The lock file this process is about to publish: an unnamed (or, where the
// file system has no O_TMPFILE, a temporarily named) inode, already locked
// and holding the complete record, and entered in the process table.
struct Prepared {
  UniqueFd fd;
  std::string temp_name;  // empty for an unnamed file
  std::string written;    // the record's bytes, as written
  bool without_kernel_lock = false;
  struct stat st {};
  bool in_table = false;
  const LockLocation* loc = nullptr;

  Prepared() = default;
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;
  ~Prepared() { reset(); }

  // Gives the file up: out of the table, its temporary name removed.
  void reset();
};

// Makes the file, locks it, writes `record` into it (durably if asked).
Failure prepare(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                Prepared* out);

// Gives the prepared file the lock's name: 0, or -1 with errno (EEXIST: the
// name is taken).
int publish(const LockLocation& loc, const Prepared& prepared);

// Removes the fallback's hidden temporaries (see prepare()) that a crash
// left beside the lock. With `locked_inode` (a stale lock file whose kernel
// lock we hold), removes only that inode's other names. Returns how many
// names it removed.
int sweep_orphaned_temps(const LockLocation& loc, const struct stat* locked_inode = nullptr);

// The canonical path of the lock's folder: the kernel's name for the folder
// descriptor we hold (one readlink), or, without /proc, Boost's canonical().
Failure resolve_folder(const LockLocation& loc, const boost::filesystem::path& path,
                       boost::filesystem::path* out);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_CREATE_HPP
