// The command's own delivery of the library's log records (--verbose).
//
// The library hands every record to pidlock::detail::emit_record (see
// lib/log.hpp), whose default definition sends it to Boost.Log. Defining it
// here, in the program, means the linker never takes the library's
// Boost.Log object from libpidlock.a, and with --as-needed (CMakeLists.txt)
// libboost_log is not even loaded: about half of the command's start-up cost
// was the dynamic loading and relocation of Boost.Log and its dependencies.
// The records are plain lines on stderr, which suits a command better.
#include <pidlock/logging.hpp>

#include <cstdio>
#include <string>

namespace pidlock::detail {

void emit_record(LogThreshold level, const std::string& message) noexcept {
  static const char* const kNames[] = {"trace", "debug", "info", "warning", "error", "error"};
  std::fprintf(stderr, "pidlock: [%s] %s\n", kNames[static_cast<int>(level)], message.c_str());
}

}  // namespace pidlock::detail
