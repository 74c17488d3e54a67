// pidlock run: hold a lock for as long as a command runs.
//
// The lock's descriptor is inherited by COMMAND (AcquireOptions::
// inheritable), and the kernel lock on it, an open-file-description lock,
// lasts as long as any process has that description open. So the lock is
// held exactly as long as COMMAND, pidlock, or any process COMMAND passed
// the descriptor on to (a background child) lives: if pidlock is
// SIGKILLed, COMMAND keeps the lock; if COMMAND exits leaving a child
// behind, the release leaves the file to that child; when the last of them
// is gone, the next acquire finds the kernel lock free and takes the file
// over (as released, or as stale after a crash).
// With -o (flock's --close) COMMAND does not inherit it, and the lock lasts
// exactly as long as pidlock.
#include "cli.hpp"
#include "directory_hint.hpp"
#include "lease_enforcement.hpp"
#include "lock_holders.hpp"
#include "process_setup.hpp"
#include "run_arguments.hpp"
#include "run_refusal.hpp"
#include "signal_relay.hpp"

#include <pidlock/canceller.hpp>
#include <pidlock/error.hpp>
#include <pidlock/holder_record.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/lock_manager.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <string>
#include <vector>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pidlock::cli {

namespace {

// A pipe whose ends are closed on exec, so COMMAND inherits neither.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  bool open() noexcept {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    read_end = fds[0];
    write_end = fds[1];
    return true;
  }
  static void close_end(int& fd) noexcept {
    // Never retried: after EINTR the descriptor is already closed on Linux.
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ~Pipe() {
    close_end(read_end);
    close_end(write_end);
  }
};

ssize_t read_retrying(int fd, void* buf, std::size_t size) noexcept {
  ssize_t n;
  do n = ::read(fd, buf, size);
  while (n < 0 && errno == EINTR);
  return n;
}

ssize_t write_retrying(int fd, const void* buf, std::size_t size) noexcept {
  ssize_t n;
  do n = ::write(fd, buf, size);
  while (n < 0 && errno == EINTR);
  return n;
}

int wait_for(pid_t child) noexcept {
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return kSoftware;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kSoftware;
}

// Whether COMMAND gets a process group of its own. A signal sent to
// pidlock's whole group (`kill -TERM -PGID`, a supervisor stopping a job)
// would otherwise reach COMMAND twice: directly, and forwarded by pidlock,
// which cannot tell a signal sent to its group from one sent to it alone.
// In a group of its own COMMAND gets every signal once, from pidlock. The
// exception is a job run in the foreground of a terminal: COMMAND stays in
// pidlock's group, which the terminal's job control (Ctrl-C, Ctrl-Z,
// reading the terminal) addresses; the relay recognises signals from the
// terminal and does not forward them.
bool in_terminal_foreground() noexcept {
  int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) return false;
  const bool foreground = tcgetpgrp(tty) == getpgrp();
  close(tty);
  return foreground;
}

// The forked child. Runs no destructor and returns to no caller: it either
// becomes COMMAND or _exits.
[[noreturn]] void become_command(char* const* command, const SignalRelay& relay, Pipe& go, Pipe& exec_error,
                                 LeaseEnforcement& enforcement, pid_t parent, bool own_group) {
  Pipe::close_end(go.write_end);
  Pipe::close_end(exec_error.read_end);
  // Wait until the parent has written our pid into the lock file, so that
  // the record names COMMAND from the moment COMMAND runs. EOF means the
  // parent failed or died: then COMMAND must not run at all.
  char go_byte;
  if (read_retrying(go.read_end, &go_byte, 1) != 1) _exit(kSoftware);
  if (own_group) (void)setpgid(0, 0);
  relay.restore_in_child();
  restore_process_in_child();
  enforcement.in_child(parent);
  execvpe(command[0], command, enforcement.environment());
  // Tell the parent why, as posix_spawn does; the pipe closes on a
  // successful exec, so the parent reads EOF then.
  int error = errno;
  (void)write_retrying(exec_error.write_end, &error, sizeof error);
  _exit(error == ENOENT ? kNotFound : kCannotExecute);
}

int run_holding(LockHandle& handle, const RunArguments& args, SignalRelay& relay) {
  LeaseEnforcement enforcement(handle, args.lock_file, args.kill_after);
  const pid_t parent = getpid();
  Pipe go, exec_error;
  if (!go.open() || !exec_error.open()) {
    int error = errno;
    print_error(describe_error(std::error_code(error, std::system_category()), "create pipe", ""));
    return exit_status_for(std::error_code(error, std::system_category()));
  }
  const bool own_group = !in_terminal_foreground();
  pid_t child = fork();
  if (child < 0) {
    std::error_code ec(errno, std::system_category());
    print_error(describe_error(ec, "fork", ""));
    return exit_status_for(ec);
  }
  if (child == 0) become_command(args.command.data(), relay, go, exec_error, enforcement, parent, own_group);
  // Also here, so that the group exists whichever process runs first.
  if (own_group) (void)setpgid(child, child);

  relay.set_child(child);
  relay.unblock();  // signals pending since block() now reach the child
  Pipe::close_end(go.read_end);
  Pipe::close_end(exec_error.write_end);

  std::error_code ec;
  handle.update_holder_pid(child, ec);
  if (ec) {
    // Closing the pipe unwritten makes the child _exit without running.
    Pipe::close_end(go.write_end);
    (void)wait_for(child);
    print_error(describe_error(ec, "record the command's pid in lock file", args.lock_file));
    return exit_status_for(ec);
  }
  (void)write_retrying(go.write_end, "g", 1);
  Pipe::close_end(go.write_end);

  int error = 0;
  bool exec_failed = read_retrying(exec_error.read_end, &error, sizeof error) == sizeof error;
  int status = enforcement.active() ? enforcement.wait(child) : wait_for(child);
  if (exec_failed) {
    print_error("cannot run \"" + std::string(args.command[0]) + "\": " + std::strerror(error));
    status = error == ENOENT ? kNotFound : kCannotExecute;
  }
  return status;
}

// Why a release found the lock file lost, judged by what is at `path` now
// against the file COMMAND held (`held`, null for a lock without a file).
// The library's own reason goes to its log, which is off by default.
std::string how_lost(const struct stat* held, const std::string& path) {
  if (held == nullptr) return "its lease ended";
  struct stat now {};
  if (lstat(path.c_str(), &now) != 0) {
    if (errno == ENOENT) return "the lock file was deleted";
    return std::string("the lock file cannot be examined: ") + std::strerror(errno);
  }
  if (now.st_dev != held->st_dev || now.st_ino != held->st_ino) return "the lock file was replaced by another file";
  return "its record was rewritten by another process";
}

// Whether the file still holds the record this run wrote, naming `recorded`
// (pidlock, or COMMAND once it started), released or not. A file created
// anew at the name (which may reuse the inode number) names its creator: a
// process locking it inherited nothing.
bool still_our_record(const std::string& lock_file, pid_t recorded) {
  std::ifstream in(lock_file, std::ios::binary);
  std::string bytes(kMaxRecordBytes + 1, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  const ParsedRecord parsed = parse_record(bytes);
  return parsed.record && parsed.record->pid == recorded;
}

// The release left the file because other processes still hold the lock:
// COMMAND's background children, say, which inherited its descriptor. The
// lock lives as long as they do (the file stays, the next run is refused),
// so say who they are.
void report_inheritors(const struct stat& held, const std::string& lock_file, pid_t recorded) {
  struct stat now {};
  if (lstat(lock_file.c_str(), &now) != 0 || now.st_dev != held.st_dev || now.st_ino != held.st_ino) return;
  // A waiter the release handed the file to holds the lock at once, and
  // may not have rewritten the record yet: its description, which
  // announced it, tells it from an inheritor's.
  std::vector<LockHolder> holders = inheritors_holding(lock_file);
  // Read after the holders: a file created anew at the name (which may
  // reuse the inode number) names its creator by now.
  if (holders.empty() || !still_our_record(lock_file, recorded)) return;
  print_error("COMMAND has exited, but the lock \"" + lock_file + "\" stays held by " + describe(holders) +
              ", which inherited its descriptor; it is released when they exit");
}

// Releases the lock after COMMAND ended with `status`; returns run's exit
// status. A lock lost while COMMAND ran means COMMAND may have overlapped
// another holder: that outweighs COMMAND's own status, which the message
// keeps.
int release_after(LockHandle& handle, const std::string& lock_file, int status) {
  struct stat held {};
  const bool has_file = handle.native_handle() >= 0 && fstat(handle.native_handle(), &held) == 0;
  const pid_t recorded = has_file ? handle.record().pid : 0;
  std::error_code ec = handle.release();
  // After an etcd loss the message about it said everything; the release
  // (a revoke, so the next holder need not wait for the lease to end) may
  // well fail too.
  if (status == kLockLost) return status;
  if (ec == errc::lock_lost) {
    print_error("lost the lock \"" + lock_file + "\" while COMMAND ran (" + how_lost(has_file ? &held : nullptr, lock_file) +
                "); nothing was removed; COMMAND's exit status was " + std::to_string(status));
    return kLockLost;
  }
  // COMMAND's status matters more to the caller than this, so it is kept.
  if (ec) print_error(describe_error(ec, "remove lock file", lock_file));
  if (!ec && has_file) report_inheritors(held, lock_file, recorded);
  return status;
}

}  // namespace

int run_main(int argc, char** argv) {
  std::optional<RunArguments> parsed = parse_run_arguments(argc, argv);
  if (!parsed) return kOk;
  const RunArguments& args = *parsed;

  // Declared before the relay so that it outlives it: the relay's handler
  // may cancel it until the relay is destroyed.
  std::optional<Canceller> canceller;
  SignalRelay relay;
  AcquireOptions options;
  // COMMAND must inherit the locked descriptor (see the top of this file),
  // unless -o asks for the lock to last only as long as pidlock.
  options.inheritable = !args.close_before_exec;
  options.mode = args.mode;
  options.group = args.group;
  options.status = "running";
  options.data_directory = args.data_directory;
  // No fsync: after a power loss the lock file can only be stale (the
  // holder is gone, and its record names another boot, or is empty or
  // missing, all of which the next acquire takes over), so durability would
  // buy nothing but start-up time.
  options.durable = false;
  if (args.wait || args.timeout) {
    options.wait = true;
    options.timeout = args.timeout;
    canceller.emplace();
    options.canceller = &*canceller;
    relay.set_canceller(&*canceller);
    // A signal that came between the relay's start and now found no
    // canceller to trip: trip it here, or the wait would never end.
    if (relay.pending()) canceller->cancel();
  }

  LockManager manager;
  LockHandle handle;
  try {
    handle = manager.acquire(args.lock_file, options);
  } catch (const LockHeldError& e) {
    if (int signal = relay.pending()) return relay.die_of(signal);
    if (!args.quiet) print_error(refusal_message(args, e.holder()));
    return args.conflict_exit_status;
  } catch (const Error& e) {
    if (int signal = relay.pending()) return relay.die_of(signal);
    print_error(e.what() + directory_hint(args.lock_file, "job.lock"));
    return exit_status_for(e.code());
  }

  // Signals now wait until COMMAND exists to receive them; one that came
  // during the acquire means the user no longer wants COMMAND to run.
  relay.block();
  if (int signal = relay.pending()) {
    (void)handle.release();
    return relay.die_of(signal);
  }
  int status = run_holding(handle, args, relay);
  return release_after(handle, args.lock_file, status);
}

}  // namespace pidlock::cli
