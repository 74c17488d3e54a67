// --verbose: the library's log records as plain lines on stderr.
//
// The handler is installed only for --verbose; without one the library
// builds no record at all. The command does not use Boost.Log: loading and
// relocating it (and Boost.Thread) was about half of the command's start-up
// cost.
#include "cli.hpp"

#include <pidlock/logging.hpp>

#include <cstdio>
#include <string_view>

namespace pidlock::cli {

void enable_verbose_logging() noexcept {
  try {
    set_log_handler([](LogLevel level, std::string_view message) {
      std::fprintf(stderr, "pidlock: [%s] %.*s\n", to_string(level), static_cast<int>(message.size()),
                   message.data());
    });
  } catch (...) {
    // Out of memory at start-up: --verbose is not worth failing for.
  }
  set_log_threshold(LogThreshold::kInfo);
}

}  // namespace pidlock::cli
