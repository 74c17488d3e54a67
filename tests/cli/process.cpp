#include "process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace cli_test {

namespace {

int counter = 0;

}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::string& scratch_dir) {
  ++counter;
  out_path_ = scratch_dir + "/.out." + std::to_string(getpid()) + "." + std::to_string(counter);
  err_path_ = scratch_dir + "/.err." + std::to_string(getpid()) + "." + std::to_string(counter);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0 || err < 0) throw std::runtime_error("cannot create output files in " + scratch_dir);
  started_ = std::chrono::steady_clock::now();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out);
  close(err);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)wait(5000ms);
  }
}

bool Process::running() {
  if (reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) reaped_ = true;
  return !reaped_;
}

void Process::kill(int signal) {
  if (!reaped_) ::kill(pid_, signal);
}

Outcome Process::wait(std::chrono::milliseconds limit) {
  Outcome o;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      reaped_ = true;
      o.err = "TEST HARNESS: process did not end within the limit; killed\n";
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  o.elapsed = std::chrono::steady_clock::now() - started_;
  if (WIFEXITED(status_)) {
    o.exited = true;
    o.code = WEXITSTATUS(status_);
  } else if (WIFSIGNALED(status_)) {
    o.signal = WTERMSIG(status_);
  }
  o.out = read_file(out_path_);
  o.err += read_file(err_path_);
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
  return o;
}

const char* pidlock_path() { return PIDLOCK_CLI_PATH; }

Outcome pidlock(const std::vector<std::string>& args, const std::string& scratch_dir,
                std::chrono::milliseconds limit) {
  std::vector<std::string> argv{pidlock_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, scratch_dir);
  return p.wait(limit);
}

void sleep_briefly() { std::this_thread::sleep_for(5ms); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

void reap_orphans() {
  int status;
  while (waitpid(-1, &status, WNOHANG) > 0) {
  }
}

}  // namespace cli_test
