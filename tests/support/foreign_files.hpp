// PostgreSQL's lock files, written by the tests (no server needed): the
// foreign records pidlock must read and judge (G6).
#ifndef PIDLOCK_TESTS_SUPPORT_FOREIGN_FILES_HPP
#define PIDLOCK_TESTS_SUPPORT_FOREIGN_FILES_HPP

#include <cstdint>
#include <string>

namespace pidlock_test {

// postmaster.pid: pid, data directory, start time, port, socket directory,
// listen address, shared-memory key and id, status (8 lines).
std::string postmaster_pid(long pid, const std::string& data_directory, std::int64_t start,
                           int port = 5432, const std::string& socket_directory = "/tmp",
                           const std::string& status = "ready   ");
// A socket lock file (/tmp/.s.PGSQL.5432.lock): lines 1-5.
std::string socket_lock(long pid, const std::string& data_directory, std::int64_t start,
                        int port = 5432, const std::string& socket_directory = "/tmp");

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_FOREIGN_FILES_HPP
