// Pipes between a test and its child processes: the tests synchronise on
// them (a line, a byte, an end of file), never on sleeps.
#ifndef PIDLOCK_TESTS_SUPPORT_PIPE_HPP
#define PIDLOCK_TESTS_SUPPORT_PIPE_HPP

#include <chrono>
#include <optional>
#include <string>

namespace pidlock_test {

// Generous bound for anything that should happen "at once": machines are
// shared and noisy (and sanitizers slow every process), so this only
// catches hangs, never measures speed.
inline constexpr std::chrono::milliseconds kPatience{20000};

// A close-on-exec pipe whose ends close at destruction. A child that
// inherits it closes the end it does not use, so that the other side sees
// an end of file when the last writer is gone.
class Pipe {
 public:
  Pipe();
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void close_read();
  void close_write();

 private:
  int fds_[2] = {-1, -1};
};

// Writes all of `bytes` (retrying EINTR and partial writes).
bool write_string(int fd, const std::string& bytes);
// `line` and a '\n'.
bool write_line(int fd, const std::string& line);
bool write_byte(int fd, char c = '.');

// True if `fd` becomes readable (data or end of file) within `timeout`.
bool readable_within(int fd, std::chrono::milliseconds timeout);
// One byte; nullopt at end of file or timeout.
std::optional<char> read_byte(int fd, std::chrono::milliseconds timeout = kPatience);
// One '\n'-terminated line, without the '\n'; nullopt at end of file or
// timeout. Reads a byte at a time, so that nothing after the line is taken
// from the pipe (a test may poll the descriptor for the next line).
std::optional<std::string> read_line(int fd, std::chrono::milliseconds timeout = kPatience);
// Blocks until end of file on `fd` (every writer closed it).
void wait_for_eof(int fd);

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_PIPE_HPP
