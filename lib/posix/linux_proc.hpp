// Reading /proc on Linux, for the real System (linux_system.cpp): the files
// of one process named by a pid of our own pid namespace, and a scan of
// every process for the ones using a file or a directory.
//
// /proc need not belong to our pid namespace. After `unshare --pid --fork`
// without a fresh /proc mount, /proc still shows the outer namespace: there
// our pid 5 is some other process's /proc/5. Every function here therefore
// translates a pid of ours into /proc's numbering first (through a pidfd,
// whose fdinfo shows the pid as /proc's namespace sees it), and reads
// nothing where that cannot be done: a record never describes a process it
// does not name.
#ifndef PIDLOCK_POSIX_LINUX_PROC_HPP
#define PIDLOCK_POSIX_LINUX_PROC_HPP

#include "posix/system.hpp"

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace pidlock::detail::linux_proc {

// Reads a small /proc file whole; false if it cannot be read.
bool read_small_file(const char* path, std::string* out);

// One process's /proc folder, pinned: while it lives, the folder names
// the process that our pid namespace calls `pid`. For this process it is
// /proc/self. valid() is false when the process does not exist or cannot
// be found in /proc's namespace.
class ProcessFolder {
 public:
  // `own_pid`: this process's pid in our namespace.
  ProcessFolder(pid_t pid, pid_t own_pid);
  ~ProcessFolder();
  ProcessFolder(const ProcessFolder&) = delete;
  ProcessFolder& operator=(const ProcessFolder&) = delete;

  bool valid() const { return valid_; }
  // "/proc/<n>/<what>" (or "/proc/self/<what>").
  std::string path(const char* what) const;
  // After reading: did the folder name the process all along? False if the
  // process was reaped meanwhile, so that /proc's pid may have been reused.
  bool still_valid() const;

 private:
  bool valid_ = false;
  bool self_ = false;
  pid_t proc_pid_ = 0;  // the pid /proc shows
  int pidfd_ = -1;      // pins the process while /proc names another namespace
};

// See System::process_scan.
int scan(const FileId* directory, const FileId* file, ProcessScan* out);

}  // namespace pidlock::detail::linux_proc

#endif  // PIDLOCK_POSIX_LINUX_PROC_HPP
