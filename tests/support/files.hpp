// Whole files and folders, read and written without the library (so that
// tests check the library against what is really on disk).
#ifndef PIDLOCK_TESTS_SUPPORT_FILES_HPP
#define PIDLOCK_TESTS_SUPPORT_FILES_HPP

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pidlock_test {

// The whole file; fails the current test (ADD_FAILURE) and returns "" if
// it cannot be read.
std::string read_file(const std::string& path);
// The whole file, or nullopt if it cannot be read (it may be gone: a
// process's /proc entry, a file a child may not have written yet). Opens
// with O_NOFOLLOW and O_NONBLOCK: never follows a symbolic link, never
// blocks on a FIFO.
std::optional<std::string> try_read_file(const std::string& path);
// Line 1 of the file, without its '\n' (read_file's failure rule).
std::string first_line(const std::string& path);

// Creates or truncates the file (never through a symbolic link) with
// `bytes` and `mode`; fails the current test on error.
void write_file(const std::string& path, const std::string& bytes, mode_t mode = 0644);

// Sets the file's modification time `seconds` into the past: an empty lock
// file that young is "in creation" (lib/file/examine.hpp), one that old a
// crashed creator's leftover.
void age_file(const std::string& path, int seconds);

// Is there anything at `path`? lstat(): a dangling symbolic link exists.
bool exists(const std::string& path);
// The file's modification time (lstat), nullopt if it is missing.
std::optional<struct timespec> mtime_of(const std::string& path);

// The names in folder `dir`, not . and .., sorted; empty if unreadable.
std::vector<std::string> list_folder(const std::string& dir);
// Every file of folder `dir`: name -> content.
std::map<std::string, std::string> snapshot(const std::string& dir);

// How many descriptors this process has open (/proc/self/fd), to find
// leaks.
int open_fd_count();

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_FILES_HPP
