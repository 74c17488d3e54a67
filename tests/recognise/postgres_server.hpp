// A real PostgreSQL 15 server for the tests (Debian's postgresql-15): a
// throw-away cluster in a temporary folder, run as user postgres on a free
// port with its own socket folder, optionally in new pid and IPC
// namespaces. Everything it started is killed, and its shared memory
// removed, at destruction.
#ifndef PIDLOCK_TESTS_RECOGNISE_POSTGRES_SERVER_HPP
#define PIDLOCK_TESTS_RECOGNISE_POSTGRES_SERVER_HPP

#include "recognise/recognise_support.hpp"

#include <string>
#include <vector>

namespace pidlock_recognise {

class PostgresServer {
 public:
  // Why the server cannot run here (binaries or user postgres missing), or
  // "" when it can.
  static std::string missing();

  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // initdb (trust authentication, no fsync). Returns "" or the failure.
  std::string init();

  struct Options {
    bool unix_socket = true;        // in socket_dir(); else TCP on 127.0.0.1 only
    bool own_namespaces = false;    // unshare --pid --ipc --fork --mount-proc
    pid_t pid_inside = 0;           // with own_namespaces: the postmaster's pid there
  };
  // Starts the server and waits until postmaster.pid says "ready".
  // Returns "" or the failure (with the server's log).
  std::string start(const Options& options);
  // Fast shutdown (SIGINT), waiting for the postmaster to exit.
  std::string stop();
  // SIGKILL to the postmaster alone (its backends live on).
  void kill_postmaster();
  // SIGKILL to the processes the postmaster left (and their children).
  void kill_orphans();
  // Runs `sql` through psql in the background; it stays connected until
  // the statement ends.
  Child psql_in_background(const std::string& sql);

  const std::string& data_dir() const { return data_; }
  const std::string& socket_dir() const { return sockets_; }
  std::string pidfile() const { return data_ + "/postmaster.pid"; }
  std::string socket_lock() const { return sockets_ + "/.s.PGSQL." + std::to_string(port_) + ".lock"; }
  int port() const { return port_; }
  // The postmaster's pid in our namespace (0 before start()).
  pid_t postmaster() const { return postmaster_; }
  std::string log() const;

 private:
  std::string base_, data_, sockets_, log_;
  int port_ = 0;
  Child process_;          // the postmaster, or unshare
  pid_t postmaster_ = 0;
  std::vector<pid_t> orphans_;  // its processes, when the postmaster was killed
  int shm_id_ = -1;
  long shm_key_ = 0;
};

}  // namespace pidlock_recognise

#endif  // PIDLOCK_TESTS_RECOGNISE_POSTGRES_SERVER_HPP
