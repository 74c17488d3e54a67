// Shared helpers of pidlock's tests: temporary folders, real child
// processes (forked or exec'd) with a report pipe, PostgreSQL-format files,
// /proc facts read independently of the library, and privilege dropping.
#ifndef PIDLOCK_TESTS_HELPERS_TEST_SUPPORT_HPP
#define PIDLOCK_TESTS_HELPERS_TEST_SUPPORT_HPP

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_test {

// Path of the pidlock_test_holder executable.
const char* holder_program();

// A fresh folder under /tmp (mode 0700), removed with its content at
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whole-file helpers; they fail the current test (ADD_FAILURE) on error.
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes, mode_t mode = 0644);
bool exists_no_follow(const std::string& path);
std::string first_line(const std::string& path);

// Is the file's kernel lock (open-file-description lock) held by anyone?
// Queried with F_OFD_GETLK through a new descriptor, so it reports locks
// held by this process's other open file descriptions too.
bool kernel_lock_held(const std::string& path);

// A pipe whose ends close at destruction.
class Pipe {
 public:
  Pipe();
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void close_read();
  void close_write();

 private:
  int fds_[2] = {-1, -1};
};

// Writes/reads whole messages on pipes.
bool write_string(int fd, const std::string& s);
// Reads one '\n'-terminated line (without the '\n'); nullopt on EOF or
// timeout.
std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout =
                                                 std::chrono::milliseconds(20000));
// Blocks until EOF on fd (every writer closed it).
void wait_for_eof(int fd);

// A real child process with a report pipe (its stdout when exec'd). At
// destruction a still-running child is SIGKILLed and reaped.
class Child {
 public:
  // Forks; the child runs body(report_fd) and _exits with its return value
  // (exceptions: exit code 125).
  static Child fork(const std::function<int(int report_fd)>& body);
  // Forks and execs argv with stdout to the report pipe (stderr kept).
  static Child spawn(const std::vector<std::string>& argv);
  // Spawns pidlock_test_holder with the given arguments.
  static Child holder(const std::vector<std::string>& args);
  // Takes charge of a child of this process made some other way (clone3,
  // say): killed and reaped at destruction like the others; no report pipe.
  static Child adopt(pid_t pid);

  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  int report_fd() const { return report_fd_; }
  std::optional<std::string> read_line(std::chrono::milliseconds timeout =
                                           std::chrono::milliseconds(20000));
  void kill(int sig = SIGKILL);
  // Reaps the child; returns the raw wait status.
  int wait();
  // Waits until the child has exited WITHOUT reaping it: it stays a zombie.
  void wait_exited_keep_zombie();
  bool reaped() const { return reaped_; }

 private:
  void reset() noexcept;
  pid_t pid_ = -1;
  int report_fd_ = -1;
  bool reaped_ = true;
};

// Exit code of a wait status, or 128+signal, or -1.
int exit_code(int status);

// --- facts about processes, read from /proc by the tests themselves ---
std::uint64_t proc_start_ticks(pid_t pid);  // /proc/PID/stat field 22
pid_t proc_parent(pid_t pid);               // field 4
char proc_state(pid_t pid);                 // field 3
std::int64_t boot_time();                   // btime of /proc/stat
std::int64_t proc_start_epoch(pid_t pid);   // btime + ticks / CLK_TCK
std::string boot_id();                      // /proc/sys/kernel/random/boot_id
std::string hostname();
std::uint64_t pid_namespace_inode(const std::string& proc_ns_path);
std::int64_t now();

// A pid that named a process which has exited and been reaped.
pid_t dead_pid();

// --- PostgreSQL files ---
// postmaster.pid: pid, datadir, start, port, socket dir, listen address,
// shmem key, status (8 lines).
std::string postmaster_pid(long pid, const std::string& data_directory, std::int64_t start,
                           int port = 5432, const std::string& socket_directory = "/tmp",
                           const std::string& status = "ready   ");
// Socket lock file: lines 1-5.
std::string socket_lock(long pid, const std::string& data_directory, std::int64_t start,
                        int port = 5432, const std::string& socket_directory = "/tmp");

// --- privileges ---
// Drops this process to uid/gid `id` with no supplementary groups, and
// proves it: true only if the effective and real ids are `id` and going back
// to root fails.
bool drop_privileges(uid_t id);

// Milliseconds since an arbitrary epoch.
std::int64_t monotonic_ms();

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_HELPERS_TEST_SUPPORT_HPP
