#include "file/create.hpp"

#include "core/log.hpp"
#include "file/process_table.hpp"

#include <fcntl.h>

#include <vector>

namespace pidlock::detail {

void Created::reset() {
  if (in_table) table_erase(st.st_dev, st.st_ino);
  in_table = false;
  if (loc != nullptr && fd.valid()) {
    // Ours to remove only while our kernel lock holds it and the name
    // still names it (nobody else removes or replaces a locked file).
    NameLook look;
    if (!names_same_file(*loc, st, &look) && look.same) sys().unlinkat(AT_FDCWD, loc->at.c_str(), 0);
  }
  loc = nullptr;
  fd.reset();
}

namespace {

// Is `suffix` what older versions appended to ".NAME.pidlock-":
// "PID-N-CLOCK", three runs of digits?
bool generated_suffix(const char* suffix) {
  int runs = 0;
  const char* p = suffix;
  for (;;) {
    const char* start = p;
    while (*p >= '0' && *p <= '9') ++p;
    if (p == start) return false;
    ++runs;
    if (*p == '\0') return runs == 3;
    if (*p != '-' || runs == 3) return false;
    ++p;
  }
}

// Locks the file we just created. False, with *lost set, where a contender
// holds the lock: it judged our file between our open and our lock, and
// may be taking it over (the creation rule lets it once the file is no
// longer young), so the file is not ours.
Failure lock_created(int fd, Created* out, bool* lost) {
  switch (sys().try_lock(fd)) {
    case KernelLock::kAcquired: return {};
    case KernelLock::kUnsupported:
      // No lock on this file system (or, transiently, none to be had:
      // lockd out of locks). Say so in the record, so that nobody takes the
      // free kernel lock for proof that we are gone: the pid rules judge us.
      out->without_kernel_lock = true;
      return {};
    case KernelLock::kHeldByOther: *lost = true; return {};
    case KernelLock::kError: break;
  }
  return system_failure("lock new lock file");
}

}  // namespace

int sweep_orphaned_temps(const LockLocation& loc, const struct stat& locked_inode) {
  UniqueFd dir(loc.open_folder());
  std::vector<std::string> names;
  if (!dir.valid() || sys().list_directory(dir.get(), &names) != 0) return 0;
  const std::string prefix = "." + loc.name + ".pidlock-";
  int removed = 0;
  for (const std::string& name : names) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    if (!generated_suffix(name.c_str() + prefix.size())) continue;  // a user's lookalike
    NameLook look;
    if (names_same_file(dir.get(), name.c_str(), locked_inode, &look) || !look.same) continue;
    if (sys().unlinkat(dir.get(), name.c_str(), 0) != 0) continue;
    PIDLOCK_LOG(info) << "removed orphaned temporary \"" << name << "\" beside \"" << loc.path << "\"";
    ++removed;
  }
  return removed;
}

// The steps, and why each is where it is:
//  1. open(O_CREAT|O_EXCL): the name is ours, the file empty and unlocked.
//  2. the kernel lock: from here on a reader sees the file held.
//  3. a look at the name: a contender may have judged the file stale in
//     between (only once it is no longer young: a creator stalled for
//     seconds), removed it and let go, leaving us the lock of an inode
//     without a name.
//  4. group and mode (AcquireOptions), then the record in one pwrite (and
//     fsync).
// The process table has the file from step 1 on, so that a thread of this
// process never mistakes its own creation for a stranger's.
Failure create_at_name(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                       Created* out, bool* lost) {
  *lost = false;
  const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | (options.inheritable ? 0 : O_CLOEXEC);
  int fd = open_at(AT_FDCWD, loc.at.c_str(), flags, options.mode);
  if (fd < 0 && errno == EEXIST) *lost = true;
  if (fd < 0) return *lost ? Failure{} : system_failure("create lock file");
  out->fd.reset(fd);
  sys().checkpoint("acquire.created");
  if (sys().fstat(fd, &out->st) != 0) return system_failure("stat lock file");
  // In the table before the lock: another thread of this process that
  // finds the file locked finds it ours too (and is refused, or waits its
  // turn), not held by a stranger.
  if (!table_insert(out->st.st_dev, out->st.st_ino))
    return pidlock_failure(errc::already_held_by_this_process, "acquire");
  out->in_table = true;
  if (Failure f = lock_created(fd, out, lost)) return f;
  if (*lost) {
    out->reset();
    return {};
  }
  out->loc = &loc;  // locked: ours to remove on failure
  sys().checkpoint("acquire.locked");
  NameLook look;
  if (Failure f = names_same_file(loc, out->st, &look)) return f;
  if (!look.same) {
    out->loc = nullptr;  // not ours to remove
    out->reset();
    *lost = true;
    return {};
  }
  // The group first: fchown may clear mode bits, and fchmod restores them.
  const bool regroup = options.group && out->st.st_gid != *options.group;
  if (regroup && sys().fchown(fd, static_cast<uid_t>(-1), *options.group) != 0)
    return system_failure("set group of lock file");
  // The mode must not depend on the umask (the usual umask leaves 0600 alone).
  if ((out->st.st_mode & 07777) != options.mode && sys().fchmod(fd, options.mode) != 0)
    return system_failure("set mode of lock file");
  if (out->without_kernel_lock != record.without_kernel_lock) {  // rare: a file system without locks
    HolderRecord published = record;
    published.without_kernel_lock = out->without_kernel_lock;
    out->written = format_record(published);
  } else {
    out->written = format_record(record);
  }
  if (!write_all_at(fd, out->written.data(), out->written.size(), 0)) return system_failure("write lock file");
  sys().checkpoint("acquire.written");
  if (options.durable && fsync_fd(fd) != 0) return system_failure("fsync lock file");
  return {};
}

}  // namespace pidlock::detail
