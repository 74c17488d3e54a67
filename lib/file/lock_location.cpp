#include "file/lock_location.hpp"

#include <fcntl.h>

#include <boost/filesystem/operations.hpp>

#include <chrono>
#include <mutex>
#include <unordered_map>
#include <thread>

namespace pidlock::detail {

namespace {

// Canonical folders by the absolute folder string they were resolved from,
// and whole locations by the absolute path they were made from. Resolving
// costs a system call per path component (canonical() lstat()s each),
// which a daemon that takes and drops a lock in a loop would pay on every
// cycle, and splitting and joining the strings again costs a tenth of the
// cycle's user-space work. A folder whose path changes meaning while the
// process runs (a symlink along it re-pointed, the folder renamed) keeps
// its first resolution: the lock is still created and judged by the inode
// at that path, and a release that finds another inode there removes
// nothing.
class LocationCache {
 public:
  Failure resolve(const std::string& folder, std::string* out) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto it = canonical_.find(folder);
      if (it != canonical_.end()) {
        *out = it->second;
        return {};
      }
    }
    boost::system::error_code ec;
    boost::filesystem::path canonical = boost::filesystem::canonical(folder, ec);
    if (!ec && !boost::filesystem::is_directory(canonical, ec) && !ec) ec.assign(ENOTDIR, boost::system::system_category());
    if (ec) return Failure{std::error_code(ec.value(), std::system_category()), "open lock folder", folder};
    *out = canonical.string();
    std::lock_guard<std::mutex> guard(mutex_);
    if (canonical_.size() < kMaxEntries) canonical_.emplace(folder, *out);
    return {};
  }

  bool find(const std::string& path, LockLocation* out) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto it = locations_.find(path);
    if (it == locations_.end()) return false;
    *out = it->second;
    return true;
  }

  void remember(const LockLocation& loc) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (locations_.size() < kMaxEntries) locations_.emplace(loc.path, loc);
  }

 private:
  static constexpr size_t kMaxEntries = 4096;  // bounded: paths may come from user input
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> canonical_;
  std::unordered_map<std::string, LockLocation> locations_;
};

LocationCache& location_cache() {
  static auto* cache = new LocationCache;  // never destroyed: used at exit
  return *cache;
}

}  // namespace

Failure open_location(const boost::filesystem::path& path, LockLocation* out) {
  const std::string& given = path.native();
  // An absolute path means the same location for the life of the process;
  // a relative one depends on the working directory.
  const bool absolute = !given.empty() && given[0] == '/';
  if (absolute && location_cache().find(given, out)) return {};
  out->path = given;
  if (path.empty()) return pidlock_failure(errc::invalid_argument, "acquire", "the lock path is empty");
  const size_t slash = given.rfind('/');
  out->name = slash == std::string::npos ? given : given.substr(slash + 1);
  if (out->name.empty() || out->name == "." || out->name == "..")
    return pidlock_failure(errc::invalid_argument, "acquire", "the lock path does not name a file");
  std::string folder = slash == std::string::npos ? std::string(".") : given.substr(0, slash == 0 ? 1 : slash);
  if (folder[0] != '/') {
    boost::system::error_code ec;
    boost::filesystem::path cwd = boost::filesystem::current_path(ec);
    if (ec) return Failure{std::error_code(ec.value(), std::system_category()), "open lock folder", folder};
    folder = (cwd / folder).string();
  }
  if (Failure f = location_cache().resolve(folder, &out->folder)) return f;
  out->at = out->folder == "/" ? "/" + out->name : out->folder + "/" + out->name;
  if (absolute) location_cache().remember(*out);
  return {};
}

int LockLocation::open_folder() const {
  return open_at(AT_FDCWD, folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Failure refuse_kind(mode_t mode) {
  if (S_ISLNK(mode))
    return pidlock_failure(errc::symlink_at_lock_path, "open lock file",
                           "refusing to follow it; remove the link or point pidlock at the real path");
  return pidlock_failure(errc::not_a_regular_file, "open lock file",
                         std::string("the path is ") + file_kind(mode) + "; nothing was opened or removed");
}

}  // namespace

Failure open_existing(const LockLocation& loc, ExistingFile* out) {
  *out = ExistingFile{};
  // lstat first: opening a device or FIFO could block or have side effects
  // (a tape rewinds on open). O_NOFOLLOW|O_NONBLOCK below closes the race
  // with a swap after this check.
  struct stat lst {};
  if (sys().fstatat(AT_FDCWD, loc.at.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      out->vanished = true;
      return {};
    }
    return system_failure("stat lock file");
  }
  if (!S_ISREG(lst.st_mode)) return refuse_kind(lst.st_mode);
  int fd = open_at(AT_FDCWD, loc.at.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      out->vanished = true;
      return {};
    }
    if (errno == ELOOP) return refuse_kind(S_IFLNK);
    return system_failure("open lock file");
  }
  out->fd.reset(fd);
  if (sys().fstat(fd, &out->st) != 0) return system_failure("stat lock file");
  if (!S_ISREG(out->st.st_mode)) return refuse_kind(out->st.st_mode);
  if (out->st.st_dev != lst.st_dev || out->st.st_ino != lst.st_ino) {
    // Replaced between lstat and open: look again.
    *out = ExistingFile{};
    out->vanished = true;
  }
  return {};
}

Failure read_record(int fd, ParsedRecord* out) {
  // A holder rewrites its record with one pwrite; a read that overlaps it
  // can see a mix of old and new bytes, which the checksum exposes. Such a
  // window is microseconds long, so a few quick re-reads settle it; a
  // record still torn after that was damaged for good (its writer died
  // mid-write) and is judged as unparsable.
  char buf[kMaxRecordBytes + 1];
  for (int attempt = 0;; ++attempt) {
    ssize_t n = read_at(fd, buf, sizeof buf, 0);
    if (n < 0) return system_failure("read lock file");
    *out = parse_record(std::string_view(buf, static_cast<size_t>(n)));
    if (!out->torn || attempt >= 20) return {};
    std::this_thread::sleep_for(std::chrono::microseconds(50 * (attempt + 1)));
  }
}

const char* NameLook::why() const noexcept {
  if (same) return "the lock file is still ours";
  return gone ? "the lock file was deleted or renamed" : "the lock file was replaced by another file";
}

Failure names_same_file(int dirfd, const char* name, const struct stat& ours, NameLook* look) {
  *look = NameLook{};
  if (sys().fstatat(dirfd, name, &look->named, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      look->gone = true;
      return {};
    }
    return system_failure("stat lock file");
  }
  look->same = look->named.st_dev == ours.st_dev && look->named.st_ino == ours.st_ino;
  return {};
}

Failure remove_if_same(const LockLocation& loc, const struct stat& st, bool* removed) {
  *removed = false;
  NameLook look;
  if (Failure f = names_same_file(loc, st, &look)) return f;
  if (!look.same) return {};
  sys().checkpoint("takeover.verified");
  if (sys().unlinkat(AT_FDCWD, loc.at.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return system_failure("remove stale lock file");
  }
  *removed = true;
  sys().checkpoint("takeover.removed");
  return {};
}

}  // namespace pidlock::detail
