// The operating-system seam.
//
// Every system call pidlock makes goes through the current System, so that
// tests can fail any call (ENOSPC, EIO, EINTR, EMFILE, ...), shorten writes,
// or end the process between any two steps. The default System is the real
// one for this platform (linux_system.cpp). Functions return what the system
// call returns and leave errno set, exactly like the call they stand for;
// retrying EINTR is the caller's job (syscalls.hpp), never the seam's.
//
// Platform specifics live behind the same seam: the kind of kernel lock
// (Linux: open-file-description locks) and the
// identity of processes (/proc, boot id, pid namespaces). Another Unix is a
// new implementation of this class, not a rewrite of the callers.
#ifndef PIDLOCK_POSIX_SYSTEM_HPP
#define PIDLOCK_POSIX_SYSTEM_HPP

#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::detail {

// What the platform knows of one process, read without signalling it.
struct ProcessStat {
  char state = '?';               // 'R', 'S', 'Z' (zombie), 'X' (dead), ...
  std::uint64_t start_ticks = 0;  // start time, clock ticks since boot
  pid_t parent = 0;
  std::string name;               // the command name (comm, at most 15 bytes)
};

// A file by identity, independent of names and mount namespaces.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
};

// One process that process_scan() found using a file or a directory. Its
// pid is the one /proc shows, which is not our pid namespace's numbering
// where /proc was mounted for another one (unshare --pid without a new
// /proc): such pids are for messages and for comparison with each other.
struct ProcessUse {
  pid_t pid = 0;
  std::string name;          // comm
  bool in_directory = false;  // its working directory is the directory asked about
  bool has_file_open = false; // one of its descriptors is the file asked about, open for writing
};

// What process_scan() saw.
struct ProcessScan {
  // This process and its ancestors, nearest first, in /proc's numbering.
  std::vector<pid_t> self_and_ancestors;
  std::vector<ProcessUse> users;  // every other process that uses the file or directory
};

// A System V shared-memory segment, as IPC_STAT shows it.
struct SharedMemoryStat {
  std::int64_t key = 0;            // the key it was created with
  std::uint64_t attached = 0;      // shm_nattch: processes attached now
  pid_t creator = 0;               // shm_cpid
  pid_t last_attached = 0;         // shm_lpid: last shmat/shmdt
};

// Answer of a non-blocking kernel-lock call.
enum class KernelLock {
  kAcquired,     // the lock is now ours
  kHeldByOther,  // another open file description holds it
  kUnsupported,  // the file system has no locks (ENOLCK, EOPNOTSUPP, ...)
  kError,        // any other failure; errno is set
};

// Answer of a kernel-lock query.
enum class LockQuery { kFree, kHeld, kUnsupported, kError };

class System {
 public:
  virtual ~System() = default;

  // --- files (same contracts as the POSIX calls of the same name) ---
  virtual int openat(int dirfd, const char* name, int flags, mode_t mode) = 0;
  virtual int close(int fd) = 0;
  virtual ssize_t pread(int fd, void* buf, size_t count, off_t offset) = 0;
  virtual ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) = 0;
  virtual int fsync(int fd) = 0;
  virtual int fstat(int fd, struct stat* st) = 0;
  virtual int fstatat(int dirfd, const char* name, struct stat* st, int flags) = 0;
  virtual int unlinkat(int dirfd, const char* name, int flags) = 0;
  virtual int fchmod(int fd, mode_t mode) = 0;
  virtual int fchown(int fd, uid_t owner, gid_t group) = 0;
  virtual int ftruncate(int fd, off_t length) = 0;
  virtual int futimens(int fd, const struct timespec times[2]) = 0;
  virtual int set_cloexec(int fd, bool on) = 0;
  // Lists the names in the folder open as `dirfd` (without "." and ".."),
  // from its start, leaving `dirfd` itself untouched. 0, or -1 with errno.
  virtual int list_directory(int dirfd, std::vector<std::string>* names) = 0;
  // Waits for events on descriptors (poll(2)).
  virtual int poll(struct pollfd* fds, nfds_t count, int timeout_ms) = 0;

  // --- kernel locks, owned by the open file description (so they survive
  // fork, die with the last descriptor, and conflict between two
  // descriptions in one process). The holder's lock is exclusive and
  // covers the file's first byte; waiters announce themselves with shared
  // locks on the second byte, which never conflict with the holder's. ---
  virtual KernelLock try_lock(int fd) = 0;
  // Waits in the kernel's queue until the holder's lock is ours
  // (F_OFD_SETLKW): the kernel grants it to waiters in the order they
  // asked, and a release wakes only the first of them. Returns 0, or -1
  // with errno (EINTR when a signal handler ran: the request has left the
  // queue).
  virtual int wait_lock(int fd) = 0;
  virtual LockQuery query_lock(int fd) = 0;
  // Drops the holder's lock taken through `fd`, keeping the descriptor.
  virtual int unlock(int fd) = 0;
  // Announces a waiter for as long as `fd` stays open. Returns 0, or -1
  // with errno (ENOLCK where the file system has no locks).
  virtual int announce_waiter(int fd) = 0;
  // Withdraws the announcement made through `fd` (a waiter that now holds
  // the lock).
  virtual int withdraw_waiter(int fd) = 0;
  // kHeld if another open file description announces a waiter.
  virtual LockQuery query_waiters(int fd) = 0;

  // --- processes ---
  virtual int kill(pid_t pid, int sig) = 0;
  virtual pid_t getpid() = 0;
  virtual pid_t getppid() = 0;
  virtual uid_t geteuid() = 0;
  virtual gid_t getegid() = 0;
  // Reads the state and start time of `pid` (a pid of our pid namespace);
  // false if it cannot be read (no such process, or no /proc, or a /proc of
  // another pid namespace in which `pid` cannot be found).
  virtual bool process_stat(pid_t pid, ProcessStat* out) = 0;
  // Looks through every process /proc shows for one, other than this
  // process and its ancestors, whose working directory is `directory` or
  // which has `file` open for writing (either may be null). Processes whose /proc
  // entries we may not read (another user's, unless we are root) are
  // skipped. Returns 0, or -1 with errno when /proc, or a process's
  // descriptors, cannot be listed (no /proc, EMFILE, ...).
  virtual int process_scan(const FileId* directory, const FileId* file, ProcessScan* out) = 0;

  // --- signs of life that other writers leave (see lib/signs_of_life.cpp) ---
  // Is a flock(2) lock held on the file through another open file
  // description? flock locks are independent of the OFD locks above on
  // Linux; util-linux flock(1) and Python's filelock take them. Asked by
  // taking a shared flock without waiting and dropping it at once.
  virtual LockQuery query_flock(int fd) = 0;
  // shmctl(id, IPC_STAT). Returns 0, or -1 with errno (EINVAL or EIDRM: no
  // such segment; EACCES: not ours to look at).
  virtual int shm_stat(int id, SharedMemoryStat* out) = 0;
  // Connects to the Unix stream socket at `path` and closes the connection
  // at once. Returns 0 if something listens there (or its backlog is full:
  // EAGAIN counts as listening), else -1 with errno (ECONNREFUSED: a socket
  // nobody listens on; ENOENT: no socket).
  virtual int connect_unix(const char* path) = 0;
  // Sends `size` bytes as one datagram to the Unix datagram socket at
  // `address`: a path, or "@name" for a name in the abstract namespace
  // (sd_notify's NOTIFY_SOCKET forms). Returns the bytes sent, or -1 with
  // errno (EAFNOSUPPORT: any other form of address; ENAMETOOLONG).
  virtual ssize_t send_datagram(const char* address, const void* data, size_t size) = 0;

  // --- identity of this machine and boot ---
  virtual std::string boot_id() = 0;  // empty if unknown
  virtual std::optional<std::uint64_t> pid_namespace(pid_t pid) = 0;
  virtual std::string hostname() = 0;
  virtual std::int64_t boot_time() = 0;       // epoch seconds, 0 if unknown
  virtual long clock_ticks_per_second() = 0;
  virtual pid_t pid_max() = 0;
  virtual std::int64_t now() = 0;             // epoch seconds

  // Called between the steps of every operation with the step's name
  // ("acquire.linked", ...). Does nothing in the real system; a test System
  // may end the process here to simulate a crash at that step.
  virtual void checkpoint(const char* step) { (void)step; }
};

// The System that pidlock calls. Never null.
System& sys() noexcept;

// Makes `replacement` (or, for nullptr, the real system) current and returns
// the previous one. For tests; not thread-safe against concurrent calls.
System* set_system(System* replacement) noexcept;

// The real system of this platform.
System& real_system() noexcept;

// How many times this process has called fork() since it first asked for
// its pid (pthread_atfork): a lock taken before a later fork may have its
// open file description shared with a child.
std::uint64_t forks_so_far() noexcept;

// Forwards every call to another System; tests derive from it and override
// only the calls they want to fail (LevelDB's EnvWrapper).
class SystemWrapper : public System {
 public:
  explicit SystemWrapper(System& target) : target_(target) {}
  int openat(int d, const char* n, int f, mode_t m) override { return target_.openat(d, n, f, m); }
  int close(int fd) override { return target_.close(fd); }
  ssize_t pread(int fd, void* b, size_t c, off_t o) override { return target_.pread(fd, b, c, o); }
  ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override { return target_.pwrite(fd, b, c, o); }
  int fsync(int fd) override { return target_.fsync(fd); }
  int fstat(int fd, struct stat* st) override { return target_.fstat(fd, st); }
  int fstatat(int d, const char* n, struct stat* st, int f) override { return target_.fstatat(d, n, st, f); }
  int unlinkat(int d, const char* n, int f) override { return target_.unlinkat(d, n, f); }
  int fchmod(int fd, mode_t m) override { return target_.fchmod(fd, m); }
  int fchown(int fd, uid_t u, gid_t g) override { return target_.fchown(fd, u, g); }
  int ftruncate(int fd, off_t l) override { return target_.ftruncate(fd, l); }
  int futimens(int fd, const struct timespec t[2]) override { return target_.futimens(fd, t); }
  int set_cloexec(int fd, bool on) override { return target_.set_cloexec(fd, on); }
  int list_directory(int d, std::vector<std::string>* n) override { return target_.list_directory(d, n); }
  int poll(struct pollfd* f, nfds_t c, int t) override { return target_.poll(f, c, t); }
  KernelLock try_lock(int fd) override { return target_.try_lock(fd); }
  int wait_lock(int fd) override { return target_.wait_lock(fd); }
  LockQuery query_lock(int fd) override { return target_.query_lock(fd); }
  int unlock(int fd) override { return target_.unlock(fd); }
  int announce_waiter(int fd) override { return target_.announce_waiter(fd); }
  int withdraw_waiter(int fd) override { return target_.withdraw_waiter(fd); }
  LockQuery query_waiters(int fd) override { return target_.query_waiters(fd); }
  int kill(pid_t p, int s) override { return target_.kill(p, s); }
  pid_t getpid() override { return target_.getpid(); }
  pid_t getppid() override { return target_.getppid(); }
  uid_t geteuid() override { return target_.geteuid(); }
  gid_t getegid() override { return target_.getegid(); }
  bool process_stat(pid_t p, ProcessStat* o) override { return target_.process_stat(p, o); }
  int process_scan(const FileId* d, const FileId* f, ProcessScan* o) override { return target_.process_scan(d, f, o); }
  LockQuery query_flock(int fd) override { return target_.query_flock(fd); }
  int shm_stat(int id, SharedMemoryStat* o) override { return target_.shm_stat(id, o); }
  int connect_unix(const char* path) override { return target_.connect_unix(path); }
  ssize_t send_datagram(const char* a, const void* d, size_t s) override { return target_.send_datagram(a, d, s); }
  std::string boot_id() override { return target_.boot_id(); }
  std::optional<std::uint64_t> pid_namespace(pid_t p) override { return target_.pid_namespace(p); }
  std::string hostname() override { return target_.hostname(); }
  std::int64_t boot_time() override { return target_.boot_time(); }
  long clock_ticks_per_second() override { return target_.clock_ticks_per_second(); }
  pid_t pid_max() override { return target_.pid_max(); }
  std::int64_t now() override { return target_.now(); }
  void checkpoint(const char* step) override { target_.checkpoint(step); }

 protected:
  System& target_;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_POSIX_SYSTEM_HPP
