#include "lock_holders.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

namespace pidlock::cli {

namespace {

// The numeric names in folder `dir` (pids in /proc, descriptors in
// /proc/PID/fd).
std::vector<int> numbers_in(const std::string& dir) {
  std::vector<int> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* entry = readdir(d)) {
    char* end = nullptr;
    long n = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0') out.push_back(static_cast<int>(n));
  }
  closedir(d);
  return out;
}

std::string first_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Every process with a descriptor on the file (device, inode) for which
// `keep(pid, fd)` is true; each process once.
std::vector<LockHolder> processes_with(dev_t dev, ino_t ino, const std::function<bool(pid_t, int)>& keep) {
  std::vector<LockHolder> out;
  for (int pid : numbers_in("/proc")) {
    const std::string base = "/proc/" + std::to_string(pid);
    for (int fd : numbers_in(base + "/fd")) {
      struct stat st {};
      if (stat((base + "/fd/" + std::to_string(fd)).c_str(), &st) != 0) continue;
      if (st.st_dev != dev || st.st_ino != ino || !keep(pid, fd)) continue;
      out.push_back({pid, first_line_of(base + "/comm")});
      break;
    }
  }
  return out;
}

// The OFD locks /proc/PID/fdinfo/FD lists: only those of that descriptor's
// own description, as lines like
//   lock:	1: OFDLCK ADVISORY  WRITE -1 fe:00:10952919 0 0
// Does it hold the holder's byte (an exclusive lock from byte 0), and does
// it announce a waiter (a shared lock on byte 1)?
struct DescriptionLocks {
  bool holder = false;
  bool announced = false;
};

DescriptionLocks locks_of(pid_t pid, int fd) {
  DescriptionLocks out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("lock:", 0) != 0) continue;
    std::istringstream fields(line.substr(5));
    std::string number, kind, mode, access, owner, file, start;
    fields >> number >> kind >> mode >> access >> owner >> file >> start;
    if (kind != "OFDLCK") continue;
    if (access == "WRITE" && start == "0") out.holder = true;
    if (access == "READ" && start == "1") out.announced = true;
  }
  return out;
}

bool holds_byte_zero(pid_t pid, int fd) { return locks_of(pid, fd).holder; }

// A description that announced a waiter and now holds the lock is a waiter
// the file was handed to, not one that inherited the holder's.
bool inherited_and_holds(pid_t pid, int fd) {
  const DescriptionLocks locks = locks_of(pid, fd);
  return locks.holder && !locks.announced;
}

}  // namespace

std::vector<LockHolder> kernel_lock_holders(const std::string& path) {
  struct stat file {};
  if (stat(path.c_str(), &file) != 0) return {};
  return processes_with(file.st_dev, file.st_ino, holds_byte_zero);
}

std::vector<LockHolder> inheritors_holding(const std::string& path) {
  struct stat file {};
  if (stat(path.c_str(), &file) != 0) return {};
  return processes_with(file.st_dev, file.st_ino, inherited_and_holds);
}

std::string describe(const std::vector<LockHolder>& holders) {
  std::string out;
  for (const LockHolder& h : holders) {
    if (!out.empty()) out += ", ";
    out += "pid " + std::to_string(h.pid) + " (" + h.command + ")";
  }
  return out;
}

}  // namespace pidlock::cli
