// guard_demo: a database-style start-up guarded by pidlock, end to end.
//
//   1. create a data directory (mode 0700) and guard it;
//   2. a second "server" (a forked process) tries to start on the same
//      directory and is refused, with the holder's pid and data directory;
//   3. the status moves from "starting" to "ready";
//   4. a holder is killed with SIGKILL, and the next start takes the lock
//      over by itself and learns that it must run crash recovery.
//
// Every step checks what it shows: the program exits 0 only if all of them
// behaved as pidlock promises, so it doubles as an end-to-end test.
#include <pidlock/boost_log.hpp>
#include <pidlock/pidlock.hpp>

#include <boost/core/null_deleter.hpp>
#include <boost/filesystem/operations.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/trivial.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace fs = boost::filesystem;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok:   " : "  FAIL: ") << what << '\n';
  if (!ok) ++failures;
}

void step(const std::string& title) { std::cout << '\n' << "== " << title << '\n'; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Prints a lock file as `cat` would, indented.
void show_file(const fs::path& path) {
  std::cout << "  $ cat " << path.string() << '\n';
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) std::cout << "  | " << line << '\n';
}

// pidlock is silent unless the host installs a log handler; this one sends
// its records through Boost.Log on channel "pidlock", and a sink shows them
// inline, so that the acquisitions, refusals and the take-over are visible.
void route_pidlock_log_to_stdout() {
  pidlock::log_to_boost_log();
  namespace logging = boost::log;
  namespace expr = boost::log::expressions;
  using Sink = logging::sinks::synchronous_sink<logging::sinks::text_ostream_backend>;
  auto sink = boost::make_shared<Sink>();
  sink->locked_backend()->add_stream(boost::shared_ptr<std::ostream>(&std::cout, boost::null_deleter()));
  sink->locked_backend()->auto_flush(true);
  sink->set_filter(expr::attr<std::string>("Channel") == pidlock::kLogChannel);
  sink->set_formatter(expr::stream << "  log[" << logging::trivial::severity << "] " << expr::smessage);
  logging::core::get()->add_sink(sink);
}

// Forks; the child runs `body` and leaves with its result, without running
// the parent's destructors (a forked child never releases its parent's
// lock anyway, but it has no business touching the parent's state).
template <typename Body>
pid_t fork_child(Body body) {
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    int code = body();
    std::cout.flush();
    ::_exit(code);
  }
  return pid;
}

// Waits for `pid`; its exit status, or 128 + signal.
int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

int main() {
  route_pidlock_log_to_stdout();
  pidlock::LockManager manager;

  // 1. A fresh data directory, private to its owner as a database's must be.
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/pidlock-demo.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const fs::path data_dir = fs::canonical(pattern);
  ::chmod(data_dir.c_str(), 0700);
  const fs::path lock_file = data_dir / "pidlock.pid";
  std::cout << "pidlock " << PIDLOCK_VERSION_STRING << " guard demo, pid " << ::getpid() << "\n"
            << "data directory: " << data_dir.string() << " (mode 0700)\n";

  try {
    step("start: guard the data directory");
    pidlock::LockHandle server = pidlock::guard_data_directory(manager, data_dir);
    expect(server.held(), "the lock is held");
    expect(!server.took_over(), "a clean start: nothing to take over");
    show_file(lock_file);
    expect(server.record().pid == ::getpid(), "line 1 of the record is our pid");
    expect(server.record().data_directory == data_dir.string(), "line 2 is the data directory");
    expect(server.record().status == "starting", "status is \"starting\"");

    step("a second server tries to start on the same directory");
    const pid_t parent = ::getpid();
    pid_t second = fork_child([&] {
      // pidlock logs the refusal at info; the demo prints it below.
      pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);
      try {
        pidlock::LockManager other;
        pidlock::LockHandle h = pidlock::guard_data_directory(other, data_dir);
        std::cout << "  second server: acquired the lock, which must not happen\n";
        return 1;
      } catch (const pidlock::LockHeldError& e) {
        std::cout << "  second server refused: " << e.what() << '\n';
        const bool names_holder = contains(e.what(), "PID " + std::to_string(parent)) &&
                                  contains(e.what(), "\"" + data_dir.string() + "\"") &&
                                  e.holder().verdict == pidlock::Verdict::kHeld &&
                                  e.holder().reason == pidlock::Reason::kKernelLockHeld;
        return names_holder ? 0 : 1;
      } catch (const std::exception& e) {
        std::cout << "  second server: unexpected error: " << e.what() << '\n';
        return 1;
      }
    });
    expect(wait_child(second) == 0, "refused with the holder's PID and data directory, by kernel-lock evidence");

    step("start-up done: status starting -> ready");
    server.update_status("ready");
    show_file(lock_file);
    expect(server.record().status == "ready", "status is \"ready\" (rewritten in place, never truncated)");
    expect(server.recheck(), "recheck: the lock file is still ours");
    pidlock::Inspection seen = manager.inspect(lock_file);
    std::cout << "  inspect: " << pidlock::to_string(seen.verdict) << " (" << pidlock::to_string(seen.reason)
              << ")\n";
    expect(seen.verdict == pidlock::Verdict::kHeld, "inspect says held");

    step("clean shutdown");
    std::error_code ec = server.release();
    expect(!ec, "release succeeded");
    expect(!fs::exists(lock_file), "the lock file is gone");

    step("crash: a server is killed with SIGKILL while it holds the lock");
    int ready_pipe[2];
    if (::pipe(ready_pipe) != 0) {
      std::perror("pipe");
      return 2;
    }
    pid_t crashing = fork_child([&] {
      ::close(ready_pipe[0]);
      try {
        pidlock::LockManager own;
        pidlock::LockHandle h = pidlock::guard_data_directory(own, data_dir);
        h.update_status("ready");
        char ready = 'R';
        if (::write(ready_pipe[1], &ready, 1) != 1) return 1;
        for (;;) ::pause();  // serve until killed
      } catch (const std::exception& e) {
        std::cout << "  crashing server: could not start: " << e.what() << '\n';
        return 1;
      }
    });
    ::close(ready_pipe[1]);
    char byte = 0;
    ssize_t got = ::read(ready_pipe[0], &byte, 1);
    ::close(ready_pipe[0]);
    expect(got == 1 && byte == 'R', "server " + std::to_string(crashing) + " holds the lock and is ready");
    show_file(lock_file);
    ::kill(crashing, SIGKILL);
    expect(wait_child(crashing) == 128 + SIGKILL, "server " + std::to_string(crashing) + " was killed");
    expect(fs::exists(lock_file), "its lock file is left behind, as after any crash");

    step("restart after the crash: the stale lock is taken over by itself");
    pidlock::LockHandle restarted = pidlock::guard_data_directory(manager, data_dir);
    expect(restarted.held(), "the lock is held again, with no one deleting a file by hand");
    expect(restarted.took_over(), "took_over() is true: the previous holder did not shut down cleanly");
    const auto& previous = restarted.previous_holder();
    if (previous && previous->holder) {
      std::cout << "  -> crash recovery needed: previous holder pid " << previous->holder->pid << ", status "
                << previous->holder->status << "\n"
                << "     judged " << pidlock::to_string(previous->verdict) << " ("
                << pidlock::to_string(previous->reason) << "): " << previous->detail << '\n';
    }
    expect(previous && previous->holder && previous->holder->pid == crashing,
           "previous_holder() names the killed pid " + std::to_string(crashing));
    expect(previous && previous->reason == pidlock::Reason::kKernelLockFree,
           "the evidence is the kernel lock, freed when the holder died");
    show_file(lock_file);
    expect(restarted.record().pid == ::getpid(), "the record now names us");
    restarted.update_status("ready");

    step("clean shutdown");
    expect(!restarted.release(), "release succeeded");
    expect(!fs::exists(lock_file), "the lock file is gone");
  } catch (const std::exception& e) {
    std::cout << "  FAIL: unexpected exception: " << e.what() << '\n';
    ++failures;
  }

  boost::system::error_code ignored;
  fs::remove_all(data_dir, ignored);
  std::cout << '\n'
            << (failures == 0 ? "guard demo: all checks passed\n"
                              : "guard demo: " + std::to_string(failures) + " check(s) FAILED\n");
  return failures == 0 ? 0 : 1;
}
