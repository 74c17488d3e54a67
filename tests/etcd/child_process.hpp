// A real child process for the etcd tests and benchmark: fork + exec with
// its stdin and stdout on pipes, read line by line with a timeout. At
// destruction a child still running is SIGKILLed and reaped.
#ifndef PIDLOCK_TESTS_ETCD_CHILD_PROCESS_HPP
#define PIDLOCK_TESTS_ETCD_CHILD_PROCESS_HPP

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_etcd_test {

class ChildProcess {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH).
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Writes `line` and a newline to the child's stdin.
  bool send(const std::string& line);
  void close_stdin();
  // The next line of the child's stdout, without the newline; nullopt on
  // end of output or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Sends `signal`.
  void signal(int signal);
  // Waits for exit; the wait status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buffer_;
};

// The monotonic clock in nanoseconds (comparable across processes).
long long monotonic_ns();

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_CHILD_PROCESS_HPP
