#include "directory_hint.hpp"

#include <sys/stat.h>

namespace pidlock::cli {

std::string directory_hint(const std::string& path, const char* example_name) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
  const std::string folder = path.back() == '/' ? path : path + "/";
  return "; pidlock locks a file, not a directory: give the lock file inside it, like \"" + folder +
         example_name + "\"";
}

}  // namespace pidlock::cli
