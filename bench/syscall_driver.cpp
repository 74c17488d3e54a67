// Runs N lock cycles of one implementation, for counting system calls:
//
//   strace -f -c -o OUT pidlock_syscall_driver IMPL N DIR
//
// bench/count_syscalls.py runs it with N = 0 and N = 2000 and divides the
// difference by 2000, so start-up calls cancel out. IMPL is one of
// floor_flock, pidlock_nosync, pidlock_fsync, pg_fsync, liblockfile.
#include <pidlock/pidlock.hpp>

#ifdef PIDLOCK_BENCH_HAVE_LIBLOCKFILE
#include <lockfile.h>
#endif

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: pidlock_syscall_driver IMPL N DIR\n");
    return 2;
  }
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  const std::string impl = argv[1];
  const long n = std::atol(argv[2]);
  const std::string dir = argv[3];
  const std::string path = dir + "/syscalls.lock";
  const std::string record = "4242\n/srv/db\n1795752900\n5432\n/tmp\nlocalhost\n  5432001   1234567\nready   \n";
  pidlock::LockManager manager;
  pidlock::AcquireOptions options;
  options.durable = impl == "pidlock_fsync";
  // Warm the process-wide caches (self identity: /proc reads) outside the
  // counted cycles, as a long-running daemon would have.
  if (impl.rfind("pidlock", 0) == 0) (void)manager.acquire(path, options).release();
  for (long i = 0; i < n; ++i) {
    if (impl == "floor_flock") {
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) return 3;
      ::close(fd);
    } else if (impl == "pidlock_nosync" || impl == "pidlock_fsync") {
      pidlock::LockHandle h = manager.acquire(path, options);
      if (h.release()) return 3;
    } else if (impl == "pg_fsync" || impl == "pg_nosync") {
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 || ::write(fd, record.data(), record.size()) < 0) return 3;
      if (impl == "pg_fsync" && ::fsync(fd) != 0) return 3;
      ::close(fd);
      ::unlink(path.c_str());
#ifdef PIDLOCK_BENCH_HAVE_LIBLOCKFILE
    } else if (impl == "liblockfile") {
      if (lockfile_create(path.c_str(), 0, L_PID) != L_SUCCESS) return 3;
      lockfile_remove(path.c_str());
#endif
    } else {
      std::fprintf(stderr, "pidlock_syscall_driver: unknown IMPL %s\n", impl.c_str());
      return 2;
    }
  }
  ::unlink(path.c_str());
  return 0;
}
