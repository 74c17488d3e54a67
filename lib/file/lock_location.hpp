// A lock path and the file at it: the looks that acquire, inspect, break,
// release and recheck share. Every question "does the path still name
// this file?" is answered by names_same_file(), here and nowhere else.
#ifndef PIDLOCK_FILE_LOCK_LOCATION_HPP
#define PIDLOCK_FILE_LOCK_LOCATION_HPP

#include <pidlock/holder_record.hpp>

#include "core/failure.hpp"
#include "posix/syscalls.hpp"

#include <boost/filesystem/path.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

namespace pidlock::detail {

// A lock path: as given, and as the absolute path of the file in its
// canonical folder, which every system call uses (relative to AT_FDCWD, so
// that a cycle opens no folder). The folder's canonical path is resolved
// once per process and folder string (see lock_location.cpp).
struct LockLocation {
  std::string path;    // as given, for messages
  std::string folder;  // canonical, absolute
  std::string name;    // last component
  std::string at;      // folder + "/" + name
  // The folder, opened for the rare calls that need it (fsync of a durable
  // creation, the owner check of a take-over); -1 with errno on failure.
  int open_folder() const;
};
Failure open_location(const boost::filesystem::path& path, LockLocation* out);

// The file found at a lock path.
struct ExistingFile {
  bool vanished = false;  // nothing there (ENOENT at some point): retry/free
  UniqueFd fd;
  struct stat st {};
};
// Opens what is at `loc` read-only, without following a symlink, without
// blocking on a FIFO and without opening devices; refuses anything but a
// regular file.
Failure open_existing(const LockLocation& loc, ExistingFile* out);

// Reads and parses the record behind `fd`, reading again (briefly) while
// the checksum shows a rewrite in progress.
Failure read_record(int fd, ParsedRecord* out);

// What a name refers to now, compared with a file we hold.
struct NameLook {
  bool same = false;   // the name names our inode
  bool gone = false;   // nothing at the name (ENOENT, ENOTDIR)
  struct stat named {};  // the name's stat, when there was one
  // "the lock file was deleted or renamed", or "... replaced by another file".
  const char* why() const noexcept;
};

// Does `name` (relative to the folder `dirfd`, or an absolute path with
// AT_FDCWD) still name the inode `ours` describes? A missing name or one
// naming another file is an answer in *look, never a failure; any other
// failure to look (EIO, EACCES, ...) is reported, never mistaken for a
// change.
Failure names_same_file(int dirfd, const char* name, const struct stat& ours, NameLook* look);
inline Failure names_same_file(const LockLocation& loc, const struct stat& ours, NameLook* look) {
  return names_same_file(AT_FDCWD, loc.at.c_str(), ours, look);
}

// Removes `loc` if it still names `st`'s inode. The caller holds the
// inode's kernel lock (or the file system has none), so no other pidlock
// user can remove or replace it meanwhile.
Failure remove_if_same(const LockLocation& loc, const struct stat& st, bool* removed);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_LOCK_LOCATION_HPP
