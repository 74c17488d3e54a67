// A hint for a lock path that names a directory: flock(1) users lock
// directories, and `pidlock status DATADIR` is a natural first try.
#ifndef PIDLOCK_TOOLS_DIRECTORY_HINT_HPP
#define PIDLOCK_TOOLS_DIRECTORY_HINT_HPP

#include <string>

namespace pidlock::cli {

// "; give the lock file inside the directory, like "DIR/postmaster.pid""
// if `path` is a directory (followed, for the hint only), else "".
std::string directory_hint(const std::string& path, const char* example_name);

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_DIRECTORY_HINT_HPP
