#include "file/takeover.hpp"

#include "file/file_owner.hpp"
#include "file/process_table.hpp"

namespace pidlock::detail {

namespace {

// Once we start writing, the stale record is gone either way; if we fail
// after that, remove the file (still ours: we hold its lock) rather than
// leave a half-rewritten one naming us, who will not hold it.
Failure give_up(const LockLocation& loc, const ExistingFile& file, Failure failure) {
  NameLook look;
  if (!names_same_file(loc, file.st, &look) && look.same) sys().unlinkat(AT_FDCWD, loc.at.c_str(), 0);
  return failure;
}

// Our record, as bytes to write over a file of `old_size` bytes.
std::string record_bytes(const HolderRecord& record, off_t old_size) {
  HolderRecord ours = record;
  ours.without_kernel_lock = false;  // we hold this file's kernel lock
  std::string bytes = format_record(ours);
  // A record a little shorter than the old one (a hand-off between two
  // holders) is padded to its length, which saves the truncate.
  constexpr off_t kMaxPadding = 64;
  const auto natural = static_cast<off_t>(bytes.size());
  if (natural < old_size && old_size - natural <= kMaxPadding)
    bytes = format_record(ours, static_cast<size_t>(old_size));
  return bytes;
}

}  // namespace

Failure adopt_stale(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                    ExistingFile& file, bool* adopted, std::string* written) {
  *adopted = false;
  const int fd = file.fd.get();
  // Only a file owned as one we create would be is rewritten: root could
  // chmod another user's, but it would stay theirs, and they could rewrite
  // the record we hold. The caller removes such a file and creates its own.
  if (!owned_as_if_created(loc.folder.c_str(), file.st, options.group)) return {};
  // A file that has the mode already is left alone: fchmod would wake
  // every waiter watching the file (IN_ATTRIB) in the middle of a hand-off.
  if ((file.st.st_mode & 07777) != options.mode && sys().fchmod(fd, options.mode) != 0) {
    if (errno == EPERM) return {};
    return system_failure("set mode of lock file");
  }
  if (options.inheritable && sys().set_cloexec(fd, false) != 0) return system_failure("make lock file inheritable");
  NameLook look;
  if (Failure f = names_same_file(loc, file.st, &look)) return f;
  if (!look.same) return {};  // renamed away meanwhile
  sys().checkpoint("takeover.verified");
  std::string bytes = record_bytes(record, file.st.st_size);
  if (!write_all_at(fd, bytes.data(), bytes.size(), 0)) return give_up(loc, file, system_failure("write lock file"));
  if (static_cast<off_t>(bytes.size()) < file.st.st_size &&
      retry_eintr([&] { return sys().ftruncate(fd, static_cast<off_t>(bytes.size())); }) != 0)
    return give_up(loc, file, system_failure("truncate lock file"));
  sys().checkpoint("takeover.written");
  if (options.durable && fsync_fd(fd) != 0) return give_up(loc, file, system_failure("fsync lock file"));
  if (!table_insert(file.st.st_dev, file.st.st_ino))
    return pidlock_failure(errc::already_held_by_this_process, "acquire");
  Failure last_look = names_same_file(loc, file.st, &look);
  if (last_look || !look.same) {
    // Our record stays in the file, whose kernel lock drops with our
    // descriptor: a stale lock the next acquire takes over.
    table_erase(file.st.st_dev, file.st.st_ino);
    if (last_look) return last_look;
    return pidlock_failure(errc::lock_lost, "acquire", "the lock file was renamed or removed during the take-over");
  }
  *adopted = true;
  *written = std::move(bytes);
  return {};
}

}  // namespace pidlock::detail
