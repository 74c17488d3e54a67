#include "file/signs_of_life.hpp"

#include "posix/system.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace pidlock::detail {
namespace {

// What one look found: nothing, a sign of life, or a sign that could not
// be read.
struct Sign {
  enum Kind { kNone, kAlive, kCannotTell } kind = kNone;
  Reason reason = Reason::kProbeFailed;
  std::string text;
};

Sign alive(Reason reason, std::string text) { return {Sign::kAlive, reason, std::move(text)}; }
Sign cannot_tell(std::string text) { return {Sign::kCannotTell, Reason::kProbeFailed, std::move(text)}; }

Sign flock_sign(int fd) {
  switch (sys().query_flock(fd)) {
    case LockQuery::kHeld:
      return alive(Reason::kFlockHeld, "a process holds a flock() lock on the file");
    case LockQuery::kError:
      return cannot_tell(std::string("whether a flock() lock is held cannot be told: ") + std::strerror(errno));
    case LockQuery::kFree:
    case LockQuery::kUnsupported:
      break;
  }
  return {};
}

// PostgreSQL's own check before it removes a stale postmaster.pid
// (PGSharedMemoryIsInUse): the segment named on line 7 ("key id") still
// has attached processes -- backends of a postmaster that was killed. A
// segment of another key under that id is another program's, reused.
Sign shared_memory_sign(const HolderRecord& rec) {
  if (!rec.shared_memory) return {};
  const SharedMemorySegment& segment = *rec.shared_memory;
  const std::string which =
      "shared memory segment (key " + std::to_string(segment.key) + ", id " + std::to_string(segment.id) + ")";
  SharedMemoryStat shm;
  if (sys().shm_stat(segment.id, &shm) != 0) {
    if (errno == EINVAL || errno == EIDRM) return {};  // gone
    return cannot_tell("whether its " + which + " is in use cannot be told: " + std::strerror(errno));
  }
  if (shm.key != segment.key || shm.attached == 0) return {};
  return alive(Reason::kSharedMemoryAttached,
               "its " + which + " still has " + std::to_string(shm.attached) +
                   " attached processes (last attached or detached by pid " + std::to_string(shm.last_attached) +
                   "): server processes live on");
}

// A server accepting connections on the record's Unix socket
// (socket directory on line 5, port on line 4) is alive, whichever pid
// namespace it runs in: the socket is reached through the file system.
Sign socket_sign(const HolderRecord& rec) {
  if (!rec.port || rec.socket_directory.empty() || rec.socket_directory.front() != '/') return {};
  const std::string path = rec.socket_directory + "/.s.PGSQL." + std::to_string(*rec.port);
  if (sys().connect_unix(path.c_str()) == 0)
    return alive(Reason::kSocketListening, "a server accepts connections on its socket " + path);
  switch (errno) {
    case ECONNREFUSED:  // a socket file nobody listens on: a dead server's
    case ENOENT:
    case ENOTDIR:
    case ENOTSOCK:
    case ENAMETOOLONG:
    case EPROTOTYPE:
      return {};
    default:
      return cannot_tell("whether a server listens on " + path + " cannot be told: " + std::strerror(errno));
  }
}

// Does process `pid` still have the file open a moment later? Another
// pidlock acquiring the same stale file has it open for writing too, but
// only between its open and its kernel lock's answer (microseconds); a
// holder that keeps its lock file open (Python's SoftFileLock) keeps it.
bool keeps_it_open(pid_t pid, const FileId& file) {
  constexpr std::chrono::milliseconds kSecondLook{20};
  std::this_thread::sleep_for(kSecondLook);
  ProcessScan again;
  if (sys().process_scan(nullptr, &file, &again) != 0) return true;  // cannot tell: it counts
  for (const ProcessUse& use : again.users)
    if (use.pid == pid && use.has_file_open) return true;
  return false;
}

// Processes that keep the lock file open for writing, or (PostgreSQL) work in the
// data directory: every PostgreSQL server process has it as its working
// directory, and /proc shows the processes of the pid namespaces below
// ours too. A /proc we cannot list cannot tell: unknown.
Sign process_sign(const HolderRecord* rec, const struct stat& st) {
  FileId file{st.st_dev, st.st_ino};
  std::optional<FileId> data_dir;
  if (rec != nullptr && rec->format == RecordFormat::kPostgresql && !rec->data_directory.empty()) {
    struct stat dir {};
    if (sys().fstatat(AT_FDCWD, rec->data_directory.c_str(), &dir, 0) == 0) {
      if (S_ISDIR(dir.st_mode)) data_dir = FileId{dir.st_dev, dir.st_ino};
    } else if (errno != ENOENT && errno != ENOTDIR) {
      // No directory there: nobody works in it. Any other failure hides
      // whether somebody does.
      return cannot_tell("whether a process works in the data directory " + rec->data_directory +
                         " cannot be told: " + std::strerror(errno));
    }
  }
  ProcessScan scan;
  if (sys().process_scan(data_dir ? &*data_dir : nullptr, &file, &scan) != 0)
    return cannot_tell(std::string("the processes that may use it cannot be listed: ") + std::strerror(errno));
  for (const ProcessUse& use : scan.users) {
    if (use.has_file_open && keeps_it_open(use.pid, file))
      return alive(Reason::kLockFileOpen,
                   "process " + std::to_string(use.pid) + " (" + use.name + ") keeps the lock file open for writing");
  }
  for (const ProcessUse& use : scan.users) {
    if (use.in_directory)
      return alive(Reason::kDataDirectoryInUse, "process " + std::to_string(use.pid) + " (" + use.name +
                                                    ") works in the data directory " + rec->data_directory);
  }
  return {};
}

}  // namespace

bool needs_signs_of_life(const Inspection& insp) {
  if (insp.verdict != Verdict::kStale) return false;
  // A pidlock holder keeps its kernel lock for life: a free one is proof
  // enough (and a waiter or contender that has the file open is no holder).
  return insp.reason != Reason::kKernelLockFree && insp.reason != Reason::kReleased &&
         insp.reason != Reason::kUnparsable;
}

void look_for_signs_of_life(int fd, const struct stat& st, Inspection& insp) {
  const HolderRecord* rec = insp.holder ? &*insp.holder : nullptr;
  const bool postgresql = rec != nullptr && rec->format == RecordFormat::kPostgresql;
  Sign sign = flock_sign(fd);
  if (sign.kind == Sign::kNone && postgresql) sign = shared_memory_sign(*rec);
  if (sign.kind == Sign::kNone && postgresql) sign = socket_sign(*rec);
  if (sign.kind == Sign::kNone) sign = process_sign(rec, st);
  if (sign.kind == Sign::kNone) return;
  insp.detail += "; but " + sign.text;
  insp.verdict = sign.kind == Sign::kAlive ? Verdict::kHeld : Verdict::kUnknown;
  insp.reason = sign.reason;
  insp.kernel_lock_evidence = sign.reason == Reason::kFlockHeld;
}

}  // namespace pidlock::detail
