#include "file/create.hpp"

#include "core/log.hpp"
#include "file/process_table.hpp"

#include <boost/filesystem/operations.hpp>

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <vector>

namespace pidlock::detail {

void Prepared::reset() {
  if (in_table) table_erase(st.st_dev, st.st_ino);
  in_table = false;
  if (!temp_name.empty()) sys().unlinkat(loc->dir.get(), temp_name.c_str(), 0);
  temp_name.clear();
  fd.reset();
}

namespace {

std::atomic<unsigned> temp_counter{0};

// Is `suffix` what prepare() appends to ".NAME.pidlock-": "PID-N-CLOCK",
// three runs of digits?
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

// Is the hidden temporary open as `fd` an orphan: nobody holds its kernel
// lock (its creator is gone), it is older than a creator needs to lock one,
// and it holds only what the fallback writes (nothing yet, or a pidlock
// record)? The check leaves us holding its lock.
bool orphaned(int fd, const struct stat& st) {
  constexpr std::int64_t kMinimumAge = 10;  // seconds; a creator locks at once
  if (sys().now() - static_cast<std::int64_t>(st.st_mtime) < kMinimumAge) return false;
  if (sys().try_lock(fd) != KernelLock::kAcquired) return false;
  ParsedRecord parsed;
  if (read_record(fd, &parsed)) return false;
  return parsed.empty || (parsed.record && parsed.record->format == RecordFormat::kPidlock) || parsed.torn;
}

// Removes the hidden temporary `name` if it still names the inode `st`.
bool remove_temp(const LockLocation& loc, const std::string& name, const struct stat& st) {
  NameLook look;
  if (names_same_file(loc.dir.get(), name.c_str(), st, &look) || !look.same) return false;
  if (sys().unlinkat(loc.dir.get(), name.c_str(), 0) != 0) return false;
  PIDLOCK_LOG(info) << "removed orphaned temporary \"" << name << "\" beside \"" << loc.path << "\"";
  return true;
}

}  // namespace

// Without O_TMPFILE, a crash between creating the hidden temporary and
// removing it after the link leaves it behind: nobody holds its kernel lock
// and it is older than a creator needs. With `locked_inode`, its lock being
// ours proves that no creator is using the inode's other names.
int sweep_orphaned_temps(const LockLocation& loc, const struct stat* locked_inode) {
  std::vector<std::string> names;
  if (sys().list_directory(loc.dir.get(), &names) != 0) return 0;
  const std::string prefix = "." + loc.name + ".pidlock-";
  int removed = 0;
  for (const std::string& name : names) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    if (!generated_suffix(name.c_str() + prefix.size())) continue;  // a user's lookalike
    UniqueFd fd(open_at(loc.dir.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || sys().fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const bool ours_to_remove = locked_inode != nullptr
                                    ? st.st_dev == locked_inode->st_dev && st.st_ino == locked_inode->st_ino
                                    : orphaned(fd.get(), st);
    if (ours_to_remove && remove_temp(loc, name, st)) ++removed;
  }
  return removed;
}

namespace {

// Opens the new file: unnamed where the file system can, else a hidden
// temporary name beside the lock (some network and FUSE file systems).
Failure open_new_file(const LockLocation& loc, const AcquireOptions& options, Prepared* out) {
  int fd = sys().open_unnamed(loc.dir.get(), options.mode, !options.inheritable);
  if (fd < 0 && errno == EOPNOTSUPP) {
    // The hidden name is removed right after the link. A crash in that
    // window leaves it behind; O_TMPFILE cannot.
    sweep_orphaned_temps(loc);
    // The clock keeps a later process with a recycled pid off a name that
    // a crash left behind.
    std::string temp = "." + loc.name + ".pidlock-" + std::to_string(sys().getpid()) + "-" +
                       std::to_string(temp_counter.fetch_add(1)) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    fd = open_at(loc.dir.get(), temp.c_str(),
                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | (options.inheritable ? 0 : O_CLOEXEC), options.mode);
    if (fd >= 0) out->temp_name = temp;
  }
  if (fd < 0) return system_failure("create lock file");
  out->fd.reset(fd);
  return {};
}

}  // namespace

Failure prepare(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                Prepared* out) {
  out->loc = &loc;
  if (Failure f = open_new_file(loc, options, out)) return f;
  const int fd = out->fd.get();
  sys().checkpoint("acquire.created");
  if (sys().fstat(fd, &out->st) != 0) return system_failure("stat lock file");
  // The group first: fchown may clear mode bits, and fchmod restores them.
  const bool regroup = options.group && out->st.st_gid != *options.group;
  if (regroup && sys().fchown(fd, static_cast<uid_t>(-1), *options.group) != 0)
    return system_failure("set group of lock file");
  // The mode must not depend on the umask (the usual umask leaves 0600 alone).
  if ((out->st.st_mode & 07777) != options.mode && sys().fchmod(fd, options.mode) != 0)
    return system_failure("set mode of lock file");
  // Lock before the file has a name: no one can ever see our file unlocked.
  switch (sys().try_lock(fd)) {
    case KernelLock::kAcquired:
      break;
    case KernelLock::kUnsupported:
      // No lock on this file system (or, transiently, none to be had: lockd
      // out of locks). Say so in the record, so that nobody takes the free
      // kernel lock for proof that we are gone: the pid rules judge us.
      out->without_kernel_lock = true;
      break;
    case KernelLock::kHeldByOther:
      errno = EDEADLK;  // impossible for a brand-new inode
      return system_failure("lock new lock file");
    case KernelLock::kError:
      return system_failure("lock new lock file");
  }
  sys().checkpoint("acquire.locked");
  HolderRecord published = record;
  published.without_kernel_lock = out->without_kernel_lock;
  out->written = format_record(published);
  if (!write_all_at(fd, out->written.data(), out->written.size(), 0)) return system_failure("write lock file");
  sys().checkpoint("acquire.written");
  if (options.durable && fsync_fd(fd) != 0) return system_failure("fsync lock file");
  // Enter the table before the file has a name, so that another thread of
  // this process that finds the file knows it is ours.
  if (!table_insert(out->st.st_dev, out->st.st_ino))
    return pidlock_failure(errc::already_held_by_this_process, "acquire");
  out->in_table = true;
  return {};
}

int publish(const LockLocation& loc, const Prepared& prepared) {
  if (prepared.temp_name.empty()) return sys().link_unnamed(prepared.fd.get(), loc.dir.get(), loc.name.c_str());
  return sys().linkat(loc.dir.get(), prepared.temp_name.c_str(), loc.dir.get(), loc.name.c_str());
}

Failure resolve_folder(const LockLocation& loc, const boost::filesystem::path& path, boost::filesystem::path* out) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", loc.dir.get());
  char target[PATH_MAX + 1];
  ssize_t n = sys().readlink(link, target, PATH_MAX);
  if (n > 0 && target[0] == '/') {
    *out = std::string(target, static_cast<size_t>(n));
    return {};
  }
  boost::system::error_code ec;
  boost::filesystem::path parent = path.parent_path().empty() ? boost::filesystem::path(".") : path.parent_path();
  *out = boost::filesystem::canonical(parent, ec);
  if (ec) return Failure{std::error_code(ec.value(), std::system_category()), "resolve lock folder", parent.string()};
  return {};
}

}  // namespace pidlock::detail
