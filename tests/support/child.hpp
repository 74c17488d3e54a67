// A real child process: forked to run a function, or a program (fork and
// exec). Liveness, take-over and exclusion are only ever proven with real
// processes, real SIGKILL and real zombies; this is the one class that
// makes them.
#ifndef PIDLOCK_TESTS_SUPPORT_CHILD_HPP
#define PIDLOCK_TESTS_SUPPORT_CHILD_HPP

#include "support/pipe.hpp"

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_test {

// How a program started by Child::spawn is connected.
struct Stdio {
  // Standard input: /dev/null, or a pipe that Child::send() writes.
  bool input_pipe = false;
  // Standard output: the report pipe (Child::read_line), or this file.
  std::string output_file;
  // Standard error: the test's own (so that it shows in a failure's
  // output), or this file (which may be output_file).
  std::string error_file;
  // The program gets SIGKILL when the test process dies
  // (PR_SET_PDEATHSIG): for servers that must not outlive a test that its
  // timeout killed.
  bool die_with_test = false;
  // Append to output_file and error_file instead of truncating them (a
  // server started again keeps its earlier log).
  bool append = false;
  // Set by captured_in(): finish() reads both files back and removes them.
  bool captured = false;

  // Output and error into two new files in `dir`. Files, not pipes: a
  // grandchild that keeps them open (a COMMAND's own children) cannot make
  // the test wait for an end of file, and a full pipe cannot stall the
  // program.
  static Stdio captured_in(const std::string& dir);
  // A program the test talks to a line at a time: send() to its stdin,
  // read_line() from its stdout; it dies with the test.
  static Stdio interactive();
};

// How a spawned program ended, with what it wrote (Child::finish).
struct Outcome {
  bool exited = false;  // false: killed by a signal (or still running)
  int code = -1;        // exit status when exited
  int signal = 0;       // signal number when killed
  std::string out;      // everything written to stdout
  std::string err;      // everything written to stderr
  std::chrono::duration<double> elapsed{0};
};

// A child process. Children never return into GoogleTest: a forked body
// ends in _exit (no destructors, no atexit handlers: a crash, as far as
// the library's state is concerned, unless the body released). Destruction
// SIGKILLs and reaps a child that is still there; move-only.
class Child {
 public:
  // Forks; the child runs body(report_fd) and _exits with its return value
  // (an exception: 125, its message on stderr). report_fd is the write end
  // of a pipe whose read end is this object's read_line().
  static Child fork(const std::function<int(int report_fd)>& body);
  static Child fork(const std::function<int()>& body);
  // Forks and execs argv (argv[0] a path, or a name looked up in PATH;
  // exit 127 if it cannot be run).
  static Child spawn(const std::vector<std::string>& argv, const Stdio& stdio = {});
  // Spawns pidlock_test_holder (support/holder_main.cpp) with `args`.
  static Child holder(const std::vector<std::string>& args);
  // Forks a child that does nothing until it is killed: a live pid; with
  // `cwd`, working in that folder (returns once /proc shows it there).
  static Child sleeper(const std::string& cwd = "");
  // Takes charge of a child of this process made some other way (clone3,
  // say): killed and reaped at destruction like the others; no report pipe.
  static Child adopt(pid_t pid);

  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  // The read end of the report pipe (a forked body's report_fd, or a
  // spawned program's stdout).
  int report_fd() const { return report_fd_; }
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = kPatience);
  // Writes `line` and a '\n' to a spawned program's stdin (Stdio::input_pipe).
  bool send(const std::string& line);
  // End of file on that stdin.
  void close_input();
  // The file the program's stdout goes to (Stdio::output_file).
  const std::string& output_file() const { return output_file_; }

  void kill(int signal = SIGKILL);
  // Reaps the child, however long that takes; the raw wait status (-1 if
  // there is no child). Once reaped, wait() returns the same status again.
  int wait();
  // Waits at most `timeout`; the raw wait status, or nullopt if the child
  // is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // wait(timeout), then: did it exit normally with `code`?
  bool exited_with(int code, std::chrono::milliseconds timeout = kPatience);
  // Is it still running? Reaps it if it has ended.
  bool running();
  bool reaped() const { return reaped_; }
  // Waits until the child has exited WITHOUT reaping it: it stays a zombie.
  void wait_exited_keep_zombie();
  // Waits for the end, at most `limit` (then SIGKILLs it and says so in
  // err), and returns how it ended with its captured output
  // (Stdio::captured_in).
  Outcome finish(std::chrono::milliseconds limit = std::chrono::milliseconds(15000));

 private:
  void own(pid_t pid, int report_fd);
  void reset() noexcept;

  pid_t pid_ = -1;
  bool reaped_ = true;
  int status_ = -1;
  int report_fd_ = -1;
  int input_fd_ = -1;
  std::string output_file_, error_file_;
  bool captured_ = false;
  std::chrono::steady_clock::time_point started_;
};

// Path of the pidlock_test_holder program (support/holder_main.cpp).
const char* holder_program();

// Exit code of a wait status, 128 + signal if killed, or -1.
int exit_code(int status);
// "exit 3", "signal 9": a wait status for a failure message.
std::string describe_status(int status);
// A pid that named a process which has exited and been reaped.
pid_t dead_pid();
// Reaps every child of this process that has ended (orphans a test adopted
// as a child subreaper among them).
void reap_orphans();

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_CHILD_HPP
