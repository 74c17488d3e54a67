// Single-process costs of pidlock against the kernel-lock floor and the
// classic lock-file peers (Google Benchmark).
//
//   cycle/<impl>/<fs>   one acquire + release, on tmpfs (/dev/shm) and on
//                       the disk file system (PIDLOCK_BENCH_DISK_DIR, default
//                       /tmp when it is not tmpfs, else /var/tmp):
//       floor_flock       open + flock(LOCK_EX|LOCK_NB) + close, no record
//       floor_ofd         open + fcntl(F_OFD_SETLK) + close, no record
//       pidlock_fsync     LockManager::acquire + release, durable = true
//       pidlock_nosync    the same, durable = false
//       pg_fsync          PostgreSQL's CreateLockFile: open(O_CREAT|O_EXCL)
//                         + write + fsync + close, then unlink
//       pg_nosync         the same without fsync
//       pg_fsync_dir      pg_fsync, plus an fsync of the folder (the name
//                         made durable too)
//       liblockfile       lockfile_create(L_PID) + lockfile_remove
//   scale/pidlock/K     one process acquiring K locks (1, 100, 10,000):
//                       the reported time is acquire ns per lock; counters
//                       give recheck, touch and release ns per lock, the
//                       acquire cost of the last tenth of the locks (flat?)
//                       and the RSS growth per held lock.
//   cycle/design_floor/<fs>  the syscalls pidlock's O_TMPFILE design needs
//   cycle/excl_floor/<fs>    the syscalls of creation at the lock's own name:
//                       open(O_CREAT|O_EXCL), OFD lock, pwrite, fstatat,
//                       unlink, close
//   inspect/held_by_other  LockManager::inspect of a lock another process holds.
//   inspect/stale_pidlock   inspect of a pidlock record whose holder died: the
//                       free kernel lock decides, no sign of life is looked for.
//   inspect/stale_postgresql  inspect of a postmaster.pid naming a dead pid:
//                       every sign of life is looked for (flock, shared memory,
//                       socket, a scan of every process in /proc).
//   parts/*             pieces of acquire() and release() singled out by the profile
//                       (see docs/benchmarks.md, "Library performance issues").
//
// Logging is off (set_log_threshold(kOff)): with Boost.Log's default sink a
// record per acquire and release would be formatted to std::clog.
#include <pidlock/pidlock.hpp>

#include <benchmark/benchmark.h>
#include <boost/filesystem/operations.hpp>

#ifdef PIDLOCK_BENCH_HAVE_LIBLOCKFILE
#include <lockfile.h>
#endif

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <utility>
#include <string>
#include <vector>

namespace {

std::string tmpfs_dir;
std::string disk_dir;
rlim_t fd_limit = 0;

std::string fs_type(const std::string& path) {
  struct statfs s {};
  if (::statfs(path.c_str(), &s) != 0) return "unknown";
  switch (s.f_type) {
    case TMPFS_MAGIC: return "tmpfs";
    case EXT4_SUPER_MAGIC: return "ext4";  // also ext2/ext3: same magic
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

std::string make_dir(const std::string& parent, const char* tag) {
  std::string dir = parent + "/pidlock-micro-" + tag + "-" + std::to_string(::getpid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::perror(("mkdir " + dir).c_str());
    std::exit(2);
  }
  return dir;
}

const std::string& dir_for(int fs) { return fs == 0 ? tmpfs_dir : disk_dir; }
const char* fs_name(int fs) { return fs == 0 ? "tmpfs" : "disk"; }

// A record of about the size pidlock writes, for the PostgreSQL-style peer.
const std::string kPgRecord =
    "4242\n/srv/db\n1795752900\n5432\n/tmp\nlocalhost\n  5432001   1234567\nready   \n";

void cycle_floor_flock(benchmark::State& state, int fs) {
  std::string path = dir_for(fs) + "/floor_flock.lock";
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      state.SkipWithError("open/flock failed");
      break;
    }
    ::close(fd);
  }
  ::unlink(path.c_str());
}

void cycle_floor_ofd(benchmark::State& state, int fs) {
  std::string path = dir_for(fs) + "/floor_ofd.lock";
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || ::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      state.SkipWithError("open/F_OFD_SETLK failed");
      break;
    }
    ::close(fd);
  }
  ::unlink(path.c_str());
}

void cycle_pidlock(benchmark::State& state, int fs, bool durable) {
  std::string path = dir_for(fs) + "/pidlock.lock";
  pidlock::LockManager manager;
  pidlock::AcquireOptions options;
  options.durable = durable;
  for (auto _ : state) {
    std::error_code ec;
    pidlock::LockHandle h = manager.acquire(path, options, ec);
    if (ec) {
      state.SkipWithError(("acquire: " + ec.message()).c_str());
      break;
    }
    if (std::error_code rc = h.release()) {
      state.SkipWithError(("release: " + rc.message()).c_str());
      break;
    }
  }
}

void cycle_pg(benchmark::State& state, int fs, bool do_fsync, bool fsync_dir = false) {
  std::string path = dir_for(fs) + "/postmaster.pid";
  int dfd = fsync_dir ? ::open(dir_for(fs).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, kPgRecord.data(), kPgRecord.size()) != static_cast<ssize_t>(kPgRecord.size()) ||
        (do_fsync && ::fsync(fd) != 0)) {
      state.SkipWithError("create/write/fsync failed");
      break;
    }
    if (dfd >= 0 && ::fsync(dfd) != 0) {
      state.SkipWithError("fsync folder failed");
      break;
    }
    ::close(fd);
    ::unlink(path.c_str());
  }
  if (dfd >= 0) ::close(dfd);
}

#ifdef PIDLOCK_BENCH_HAVE_LIBLOCKFILE
void cycle_liblockfile(benchmark::State& state, int fs) {
  std::string path = dir_for(fs) + "/liblockfile.lock";
  for (auto _ : state) {
    if (lockfile_create(path.c_str(), 0, L_PID) != L_SUCCESS) {
      state.SkipWithError("lockfile_create failed");
      break;
    }
    lockfile_remove(path.c_str());
  }
}
#endif

// The kernel work pidlock's design needs and nothing else: an unnamed file
// in an already-open folder, its OFD lock, the record, link() into place,
// then unlink and close. The distance between this and cycle/pidlock_nosync
// is the library's own overhead; the distance between this and the floor is
// the price of the design (a record that is never seen half-written).
void cycle_design_floor(benchmark::State& state, int fs) {
  std::string dir = dir_for(fs);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::string record(191, 'x');
  for (auto _ : state) {
    int fd = ::openat(dfd, ".", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (fd < 0 || ::fcntl(fd, F_OFD_SETLK, &fl) != 0 ||
        ::pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size()) ||
        ::linkat(AT_FDCWD, proc, dfd, "design.lock", AT_SYMLINK_FOLLOW) != 0) {
      state.SkipWithError("O_TMPFILE/lock/write/link failed");
      break;
    }
    ::unlinkat(dfd, "design.lock", 0);
    ::close(fd);
  }
  ::close(dfd);
}

// The kernel work of creating the lock file at its own name: open with
// O_CREAT|O_EXCL, the OFD lock, the record in one pwrite, a check that the
// name still names the file, then unlink and close. A reader's rule for a
// file still being written replaces O_TMPFILE's unnamed-until-complete file.
void cycle_excl_floor(benchmark::State& state, int fs) {
  std::string path = dir_for(fs) + "/excl.lock";
  std::string record(191, 'x');
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    struct stat st {};
    if (fd < 0 || ::fcntl(fd, F_OFD_SETLK, &fl) != 0 ||
        ::pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size()) ||
        ::fstatat(AT_FDCWD, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      state.SkipWithError("O_EXCL/lock/write/stat failed");
      break;
    }
    ::unlink(path.c_str());
    ::close(fd);
  }
}

// What acquire() spends to compute the record's data directory: Boost's
// canonical() (getcwd + one lstat per path component) against one readlink
// of the folder descriptor acquire() already holds.
void parts_boost_canonical(benchmark::State& state) {
  boost::filesystem::path dir(tmpfs_dir);
  for (auto _ : state) benchmark::DoNotOptimize(boost::filesystem::canonical(dir));
}

void parts_readlink_dir_fd(benchmark::State& state) {
  int dfd = ::open(tmpfs_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char proc[64], buf[4096];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", dfd);
  for (auto _ : state) benchmark::DoNotOptimize(::readlink(proc, buf, sizeof buf));
  ::close(dfd);
}

// A waiting acquire creates an inotify instance, watches the folder and the
// holder's file, and closes the instance before it returns. Closing an
// instance that had marks destroys its fsnotify group, which waits for an
// SRCU grace period; removing the watches and keeping the instance does not.
void parts_inotify(benchmark::State& state, bool close_instance) {
  std::string file = tmpfs_dir + "/inotify.target";
  ::close(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  int keep = close_instance ? -1 : ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  for (auto _ : state) {
    state.PauseTiming();
    int fd = close_instance ? ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK) : keep;
    int w1 = ::inotify_add_watch(fd, tmpfs_dir.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO);
    int w2 = ::inotify_add_watch(fd, file.c_str(), IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
    state.ResumeTiming();
    if (close_instance) {
      ::close(fd);
    } else {
      ::inotify_rm_watch(fd, w1);
      ::inotify_rm_watch(fd, w2);
    }
  }
  if (keep >= 0) ::close(keep);
  ::unlink(file.c_str());
}

// A record as a hand-off writes and reads it: every field pidlock fills in.
pidlock::HolderRecord sample_record() {
  pidlock::HolderRecord r;
  r.pid = 123456;
  r.data_directory = "/var/lib/postgresql/16/main";
  r.start_time = 1795000000;
  r.process_start_ticks = 987654321;
  r.boot_id = "5f0c3a1e-8d2b-4c7e-9a61-0b3d2f4e5a6c";
  r.pid_namespace = 4026531836;
  r.host = "db-primary-01";
  r.status = "ready";
  return r;
}

void parts_format_record(benchmark::State& state) {
  const pidlock::HolderRecord r = sample_record();
  for (auto _ : state) benchmark::DoNotOptimize(pidlock::format_record(r, 0));
}

void parts_parse_record(benchmark::State& state) {
  const std::string bytes = pidlock::format_record(sample_record(), 0);
  for (auto _ : state) benchmark::DoNotOptimize(pidlock::parse_record(bytes));
}

void parts_getpid(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(::getpid());
}

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

void scale(benchmark::State& state) {
  const auto locks = static_cast<std::size_t>(state.range(0));
  if (fd_limit < locks + 64) {
    state.SkipWithError("RLIMIT_NOFILE too low for this many locks");
    return;
  }
  std::string dir = tmpfs_dir + "/scale-" + std::to_string(locks);
  ::mkdir(dir.c_str(), 0700);
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < locks; ++i) paths.push_back(dir + "/lock-" + std::to_string(i));
  pidlock::AcquireOptions options;
  options.durable = false;
  double acquire_s = 0, tail_s = 0, recheck_s = 0, touch_s = 0, release_s = 0;
  std::size_t tail_count = 0;
  long rss_growth = -1;
  std::size_t rounds = 0;
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    pidlock::LockManager manager;
    std::vector<pidlock::LockHandle> handles;
    handles.reserve(locks);
    long rss0 = rss_bytes();
    const std::size_t tail_from = locks - (locks + 9) / 10;
    auto t0 = clock::now();
    auto t_tail = t0;
    for (std::size_t i = 0; i < locks; ++i) {
      if (i == tail_from) t_tail = clock::now();
      std::error_code ec;
      handles.push_back(manager.acquire(paths[i], options, ec));
      if (ec) {
        state.SkipWithError(("acquire: " + ec.message()).c_str());
        return;
      }
    }
    auto t1 = clock::now();
    if (rss_growth < 0) rss_growth = rss_bytes() - rss0;
    for (auto& h : handles) {
      std::error_code ec;
      if (!h.recheck(ec)) {
        state.SkipWithError("recheck said lost");
        return;
      }
    }
    auto t2 = clock::now();
    if (manager.touch_all()) {
      state.SkipWithError("touch_all failed");
      return;
    }
    auto t3 = clock::now();
    if (manager.release_all()) {
      state.SkipWithError("release_all failed");
      return;
    }
    auto t4 = clock::now();
    std::chrono::duration<double> acq = t1 - t0, tail = t1 - t_tail, rc = t2 - t1, tc = t3 - t2, rel = t4 - t3;
    acquire_s += acq.count();
    tail_s += tail.count();
    tail_count += locks - tail_from;
    recheck_s += rc.count();
    touch_s += tc.count();
    release_s += rel.count();
    ++rounds;
    state.SetIterationTime(acq.count() / static_cast<double>(locks));
  }
  const double per = 1e9 / static_cast<double>(rounds * locks);
  state.counters["acquire_ns_per_lock"] = acquire_s * per;
  state.counters["acquire_tail_ns_per_lock"] = tail_s * 1e9 / static_cast<double>(tail_count);
  state.counters["recheck_ns_per_lock"] = recheck_s * per;
  state.counters["touch_ns_per_lock"] = touch_s * per;
  state.counters["release_ns_per_lock"] = release_s * per;
  state.counters["rss_bytes_per_lock"] = static_cast<double>(rss_growth) / static_cast<double>(locks);
  ::rmdir(dir.c_str());
}

void inspect_held_by_other(benchmark::State& state) {
  std::string path = tmpfs_dir + "/inspect.lock";
  int ready[2];
  if (::pipe(ready) != 0) {
    state.SkipWithError("pipe");
    return;
  }
  pid_t child = ::fork();
  if (child == 0) {
    pidlock::LockManager manager;
    pidlock::AcquireOptions options;
    options.durable = false;
    pidlock::LockHandle h = manager.acquire(path, options);
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    for (;;) ::pause();
  }
  char c;
  (void)!::read(ready[0], &c, 1);
  ::close(ready[0]);
  ::close(ready[1]);
  pidlock::LockManager manager;
  for (auto _ : state) {
    std::error_code ec;
    pidlock::Inspection i = manager.inspect(path, {}, ec);
    if (ec || i.verdict != pidlock::Verdict::kHeld) {
      state.SkipWithError("inspect did not say held");
      break;
    }
    benchmark::DoNotOptimize(i);
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::unlink(path.c_str());
}

// A stale lock of each kind: a pidlock record whose holder (a child) died,
// or a postmaster.pid naming a dead pid, with an absent shared-memory
// segment and socket, so that every sign of life is looked for.
void inspect_stale(benchmark::State& state, bool postgresql) {
  std::string path = tmpfs_dir + (postgresql ? "/postmaster.pid" : "/stale.lock");
  pid_t child = ::fork();
  if (child == 0) {
    if (!postgresql) {
      pidlock::LockManager manager;
      pidlock::AcquireOptions options;
      options.durable = false;
      pidlock::LockHandle h = manager.acquire(path, options);
      (void)h.native_handle();
      ::_exit(0);  // without releasing: a stale pidlock record
    }
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  if (postgresql) {
    std::ofstream out(path);
    out << child << "\n" << tmpfs_dir << "\n" << std::time(nullptr) << "\n5433\n" << tmpfs_dir
        << "\n\n  5433001  2147483000\nready   \n";
  }
  pidlock::LockManager manager;
  for (auto _ : state) {
    std::error_code ec;
    pidlock::Inspection i = manager.inspect(path, {}, ec);
    if (ec || i.verdict != pidlock::Verdict::kStale) {
      state.SkipWithError("inspect did not say stale");
      break;
    }
    benchmark::DoNotOptimize(i);
  }
  ::unlink(path.c_str());
}

void raise_fd_limit() {
  struct rlimit rl {};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  fd_limit = rl.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  raise_fd_limit();
  tmpfs_dir = make_dir("/dev/shm", "tmpfs");
  std::string disk_parent = "/tmp";
  if (const char* d = std::getenv("PIDLOCK_BENCH_DISK_DIR")) disk_parent = d;
  else if (fs_type("/tmp") == "tmpfs") disk_parent = "/var/tmp";
  disk_dir = make_dir(disk_parent, "disk");

  benchmark::AddCustomContext("tmpfs_dir", tmpfs_dir + " (" + fs_type(tmpfs_dir) + ")");
  benchmark::AddCustomContext("disk_dir", disk_dir + " (" + fs_type(disk_dir) + ")");
  benchmark::AddCustomContext("rlimit_nofile", std::to_string(fd_limit));

  for (int fs : {0, 1}) {
    std::string suffix = std::string("/") + fs_name(fs);
    benchmark::RegisterBenchmark(("cycle/floor_flock" + suffix).c_str(), cycle_floor_flock, fs);
    benchmark::RegisterBenchmark(("cycle/floor_ofd" + suffix).c_str(), cycle_floor_ofd, fs);
    benchmark::RegisterBenchmark(("cycle/design_floor" + suffix).c_str(), cycle_design_floor, fs);
    benchmark::RegisterBenchmark(("cycle/pidlock_nosync" + suffix).c_str(), cycle_pidlock, fs, false);
    benchmark::RegisterBenchmark(("cycle/pidlock_fsync" + suffix).c_str(), cycle_pidlock, fs, true);
    benchmark::RegisterBenchmark(("cycle/pg_nosync" + suffix).c_str(), cycle_pg, fs, false, false);
    benchmark::RegisterBenchmark(("cycle/pg_fsync" + suffix).c_str(), cycle_pg, fs, true, false);
    benchmark::RegisterBenchmark(("cycle/pg_fsync_dir" + suffix).c_str(), cycle_pg, fs, true, true);
    benchmark::RegisterBenchmark(("cycle/excl_floor" + suffix).c_str(), cycle_excl_floor, fs);
#ifdef PIDLOCK_BENCH_HAVE_LIBLOCKFILE
    benchmark::RegisterBenchmark(("cycle/liblockfile" + suffix).c_str(), cycle_liblockfile, fs);
#endif
  }
  // Fixed iteration counts: with manual (per-lock) time, Google Benchmark
  // would otherwise run 10,000-lock rounds until their per-lock times add
  // up to the minimum time.
  for (auto [locks, rounds] : {std::pair<int, int>{1, 5000}, {100, 50}, {10000, 3}})
    benchmark::RegisterBenchmark("scale/pidlock", scale)->Arg(locks)->Iterations(rounds)->UseManualTime();
  benchmark::RegisterBenchmark("inspect/held_by_other", inspect_held_by_other);
  benchmark::RegisterBenchmark("inspect/stale_pidlock", inspect_stale, false)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("inspect/stale_postgresql", inspect_stale, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("parts/boost_canonical", parts_boost_canonical);
  benchmark::RegisterBenchmark("parts/readlink_dir_fd", parts_readlink_dir_fd);
  benchmark::RegisterBenchmark("parts/getpid", parts_getpid);
  benchmark::RegisterBenchmark("parts/format_record", parts_format_record);
  benchmark::RegisterBenchmark("parts/parse_record", parts_parse_record);
  benchmark::RegisterBenchmark("parts/inotify_close_instance", parts_inotify, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("parts/inotify_rm_watches", parts_inotify, false)->Unit(benchmark::kMicrosecond);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  ::rmdir(tmpfs_dir.c_str());
  ::rmdir(disk_dir.c_str());
  return 0;
}
