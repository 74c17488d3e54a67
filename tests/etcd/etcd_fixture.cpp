#include "etcd_fixture.hpp"

#include <sstream>

namespace pidlock_etcd_test {

HolderLine parse_holder_line(const std::string& line) {
  HolderLine out;
  std::istringstream in(line);
  in >> out.word >> out.a;
  if (out.word == "acquired") in >> out.b;
  std::getline(in, out.rest);
  return out;
}

std::unique_ptr<Child> start_holder_process(const std::string& address, bool wait) {
  std::vector<std::string> argv = {PIDLOCK_ETCD_HOLDER, address};
  if (wait) argv.push_back("wait");
  return std::make_unique<Child>(Child::spawn(argv, Stdio::interactive()));
}

std::string ask(Child& child, const std::string& command) {
  child.send(command);
  auto line = child.read_line();
  return line ? *line : "(no answer)";
}

int run_pidlock(const std::vector<std::string>& args, std::string* err, std::chrono::milliseconds timeout,
                std::string* out) {
  TempDir dir;
  std::vector<std::string> argv = {PIDLOCK_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  Stdio stdio = Stdio::captured_in(dir.path());
  stdio.die_with_test = true;
  Outcome o = Child::spawn(argv, stdio).finish(timeout);
  if (err) *err = o.err;
  if (out) *out = o.out;
  return o.exited ? o.code : 128 + o.signal;
}

void EtcdTest::SetUp() {
  pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);
  std::string problem;
  ASSERT_TRUE(cluster_.start(&problem)) << problem;
}

std::unique_ptr<Child> EtcdTest::start_holder(const std::string& address, std::uint64_t* token, bool wait) {
  auto child = start_holder_process(address, wait);
  auto line = child->read_line();
  EXPECT_TRUE(line && line->rfind("acquired ", 0) == 0) << (line ? *line : "(no output)");
  if (line && line->rfind("acquired ", 0) == 0) *token = std::stoull(line->substr(9));
  return child;
}

}  // namespace pidlock_etcd_test
