#include "support/foreign_files.hpp"

namespace pidlock_test {

std::string socket_lock(long pid, const std::string& data_directory, std::int64_t start, int port,
                        const std::string& socket_directory) {
  return std::to_string(pid) + "\n" + data_directory + "\n" + std::to_string(start) + "\n" +
         std::to_string(port) + "\n" + socket_directory + "\n";
}

std::string postmaster_pid(long pid, const std::string& data_directory, std::int64_t start, int port,
                           const std::string& socket_directory, const std::string& status) {
  return socket_lock(pid, data_directory, start, port, socket_directory) + "*\n  5432001    393216\n" + status + "\n";
}

}  // namespace pidlock_test
