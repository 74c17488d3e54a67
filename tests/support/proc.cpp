#include "support/proc.hpp"

#include "support/files.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace pidlock_test {

namespace {

// The fields of /proc/PID/stat after the command name (field 3 first),
// from `text`; empty if there is no command name.
std::vector<std::string> fields_after_name(const std::string& text) {
  std::vector<std::string> fields;
  auto close = text.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream in(text.substr(close + 1));
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

std::vector<std::string> stat_fields(pid_t pid) {
  return fields_after_name(read_file("/proc/" + std::to_string(pid) + "/stat"));
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::uint64_t proc_start_ticks(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 19 ? std::stoull(f[19]) : 0;  // field 22
}

pid_t proc_parent(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 1 ? static_cast<pid_t>(std::stol(f[1])) : 0;  // field 4
}

char proc_state(pid_t pid) {
  auto f = stat_fields(pid);
  return f.empty() ? '?' : f[0][0];
}

std::optional<std::chrono::milliseconds> cpu_time(pid_t pid) {
  std::optional<std::string> text = try_read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto f = fields_after_name(*text);
  if (f.size() < 13) return std::nullopt;
  unsigned long long ticks = std::stoull(f[11]) + std::stoull(f[12]);  // fields 14 and 15
  return std::chrono::milliseconds(ticks * 1000 / static_cast<unsigned long long>(::sysconf(_SC_CLK_TCK)));
}

std::int64_t boot_time() {
  std::string text = read_file("/proc/stat");
  auto at = text.find("\nbtime ");
  return at == std::string::npos ? 0 : std::strtoll(text.c_str() + at + 7, nullptr, 10);
}

std::int64_t proc_start_epoch(pid_t pid) {
  return boot_time() + static_cast<std::int64_t>(proc_start_ticks(pid) /
                                                 static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
}

std::string boot_id() { return trimmed(read_file("/proc/sys/kernel/random/boot_id")); }

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::uint64_t pid_namespace_inode(const std::string& proc_ns_path) {
  struct stat st {};
  if (::stat(proc_ns_path.c_str(), &st) != 0) {
    ADD_FAILURE() << "stat " << proc_ns_path << ": " << std::strerror(errno);
    return 0;
  }
  return st.st_ino;
}

bool in_initial_pid_namespace() { return pid_namespace_inode("/proc/self/ns/pid") == 0xEFFFFFFCu; }

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

std::vector<pid_t> proc_tasks(pid_t pid) {
  std::vector<pid_t> tids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
    tids.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
  return tids;
}

std::uint64_t context_switches(pid_t pid, const std::vector<pid_t>& tids) {
  std::uint64_t sum = 0;
  for (pid_t tid : tids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        sum += std::stoull(line.substr(line.find(':') + 1));
    }
  }
  return sum;
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

long long monotonic_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::int64_t monotonic_ms() { return monotonic_ns() / 1000000; }

}  // namespace pidlock_test
