#include "etcd_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace pidlock_etcd_test {

HolderLine parse_holder_line(const std::string& line) {
  HolderLine out;
  std::istringstream in(line);
  in >> out.word >> out.a;
  if (out.word == "acquired") in >> out.b;
  std::getline(in, out.rest);
  return out;
}

std::unique_ptr<ChildProcess> start_holder_process(const std::string& address, bool wait) {
  std::vector<std::string> argv = {PIDLOCK_ETCD_HOLDER, address};
  if (wait) argv.push_back("wait");
  return std::make_unique<ChildProcess>(argv);
}

std::string ask(ChildProcess& child, const std::string& command) {
  child.send(command);
  auto line = child.read_line();
  return line ? *line : "(no answer)";
}

int run_pidlock(const std::vector<std::string>& args, std::string* err, std::chrono::milliseconds timeout,
                std::string* out) {
  TempDir dir;
  const std::string err_path = dir.file("stderr");
  const std::string out_path = dir.file("stdout");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) ::dup2(fd, 2);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out >= 0) ::dup2(out, 1);
    std::vector<char*> argv = {const_cast<char*>(PIDLOCK_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(PIDLOCK_CLI, argv.data());
    ::_exit(127);
  }
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (err) *err = read_file(err_path);
  if (out) *out = read_file(out_path);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/pidlock-etcd-test-XXXXXX";
  if (::mkdtemp(tmpl)) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.rfind("/tmp/pidlock-etcd-test-", 0) == 0) {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)std::system(cmd.c_str());
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void EtcdTest::SetUp() {
  pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);
  std::string problem;
  ASSERT_TRUE(cluster_.start(&problem)) << problem;
}

std::unique_ptr<ChildProcess> EtcdTest::start_holder(const std::string& address, std::uint64_t* token, bool wait) {
  auto child = start_holder_process(address, wait);
  auto line = child->read_line();
  EXPECT_TRUE(line && line->rfind("acquired ", 0) == 0) << (line ? *line : "(no output)");
  if (line && line->rfind("acquired ", 0) == 0) *token = std::stoull(line->substr(9));
  return child;
}

}  // namespace pidlock_etcd_test
