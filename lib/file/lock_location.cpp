#include "file/lock_location.hpp"

#include <fcntl.h>

#include <chrono>
#include <thread>

namespace pidlock::detail {

Failure open_location(const boost::filesystem::path& path, LockLocation* out) {
  out->path = path.string();
  if (path.empty()) return pidlock_failure(errc::invalid_argument, "acquire", "the lock path is empty");
  boost::filesystem::path name = path.filename();
  if (name.empty() || name == "." || name == ".." || name == "/")
    return pidlock_failure(errc::invalid_argument, "acquire", "the lock path does not name a file");
  out->name = name.string();
  boost::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  int fd = open_at(AT_FDCWD, folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return system_failure("open lock folder", folder.string());
  out->dir.reset(fd);
  return {};
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
  if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      out->vanished = true;
      return {};
    }
    return system_failure("stat lock file");
  }
  if (!S_ISREG(lst.st_mode)) return refuse_kind(lst.st_mode);
  int fd = open_at(loc.dir.get(), loc.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
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

Failure names_same_file(int dirfd, const char* name, const struct stat& ours, NameLook* look, UniqueFd* pin) {
  *look = NameLook{};
  int rc = -1;
  if (pin != nullptr) {
    pin->reset(open_at(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (pin->valid()) rc = sys().fstat(pin->get(), &look->named);
  } else {
    rc = sys().fstatat(dirfd, name, &look->named, AT_SYMLINK_NOFOLLOW);
  }
  if (rc != 0) {
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
  if (sys().unlinkat(loc.dir.get(), loc.name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return system_failure("remove stale lock file");
  }
  *removed = true;
  sys().checkpoint("takeover.removed");
  return {};
}

}  // namespace pidlock::detail
