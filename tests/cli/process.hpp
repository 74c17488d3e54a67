// Running the pidlock program, and other processes, from the tests.
#ifndef PIDLOCK_TESTS_CLI_PROCESS_HPP
#define PIDLOCK_TESTS_CLI_PROCESS_HPP

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace cli_test {

using namespace std::chrono_literals;

// How a process ended.
struct Outcome {
  bool exited = false;  // false: killed by a signal (or still running)
  int code = -1;        // exit status when exited
  int signal = 0;       // signal number when killed
  std::string out;      // everything written to stdout
  std::string err;      // everything written to stderr
  std::chrono::duration<double> elapsed{0};
};

// A started process. stdout and stderr go to files, not pipes, so that a
// grandchild that keeps them open (COMMAND's own children) cannot make the
// test wait for an end of file.
class Process {
 public:
  // Starts argv[0] (searched in PATH). The files live in `scratch_dir`.
  Process(const std::vector<std::string>& argv, const std::string& scratch_dir);
  ~Process();  // SIGKILLs and reaps the process if it is still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits for the end, at most `limit` (then SIGKILLs it and reports it).
  Outcome wait(std::chrono::milliseconds limit = 15000ms);
  void kill(int signal);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string out_path_, err_path_;
  std::chrono::steady_clock::time_point started_;
};

// The path of the built program.
const char* pidlock_path();

// Runs pidlock with `args` to the end.
Outcome pidlock(const std::vector<std::string>& args, const std::string& scratch_dir,
                std::chrono::milliseconds limit = 15000ms);

void sleep_briefly();

// Polls `done` every few milliseconds until it is true or `limit` passes.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    sleep_briefly();
  }
  return true;
}

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
bool exists(const std::string& path);

// Reaps every finished child of this process (the tests are a subreaper,
// so orphaned COMMANDs become ours).
void reap_orphans();

}  // namespace cli_test

#endif  // PIDLOCK_TESTS_CLI_PROCESS_HPP
