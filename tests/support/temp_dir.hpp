// A fresh folder for one test, removed with everything in it at the end.
#ifndef PIDLOCK_TESTS_SUPPORT_TEMP_DIR_HPP
#define PIDLOCK_TESTS_SUPPORT_TEMP_DIR_HPP

#include <string>
#include <vector>

namespace pidlock_test {

// A new folder (mode 0700) under $TMPDIR, or /tmp, with its real path (no
// symbolic link in it, so that paths built from it compare equal to what
// the library resolves). Destruction removes it and its content; as root
// that works whatever modes a test left behind.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // The names in the folder (hidden ones too, not . and ..), sorted.
  std::vector<std::string> entries() const;

 private:
  std::string path_;
};

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_TEMP_DIR_HPP
