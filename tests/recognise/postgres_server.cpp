#include "recognise/postgres_server.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace pidlock_recognise {
namespace {

const char* const kBin = "/usr/lib/postgresql/15/bin";

std::string bin(const char* program) { return std::string(kBin) + "/" + program; }

// A TCP port on 127.0.0.1 that nobody uses right now.
int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(s, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(s, reinterpret_cast<struct sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(s);
  return port;
}

std::string shell_quoted(const std::string& s) { return "'" + s + "'"; }

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string comm_of(pid_t pid) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
  if (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

}  // namespace

std::string PostgresServer::missing() {
  for (const char* program : {"initdb", "postgres", "psql"})
    if (::access(bin(program).c_str(), X_OK) != 0)
      return "PostgreSQL 15 is not installed here (" + bin(program) +
             " is missing; Debian package postgresql-15, which scripts/setup.sh installs)";
  if (::getpwnam("postgres") == nullptr) return "there is no user postgres to run PostgreSQL as";
  if (::geteuid() != 0) return "running PostgreSQL as user postgres needs root";
  return {};
}

PostgresServer::PostgresServer() {
  char templ[] = "/tmp/pidlock-pg.XXXXXX";
  if (::mkdtemp(templ) == nullptr) return;
  base_ = templ;
  data_ = base_ + "/data";
  sockets_ = base_ + "/sockets";
  log_ = base_ + "/server.log";
  const struct passwd* pg = ::getpwnam("postgres");
  ::chmod(base_.c_str(), 0755);
  ::mkdir(sockets_.c_str(), 0755);
  if (pg != nullptr) {
    (void)!::chown(base_.c_str(), pg->pw_uid, pg->pw_gid);
    (void)!::chown(sockets_.c_str(), pg->pw_uid, pg->pw_gid);
  }
  port_ = free_port();
}

PostgresServer::~PostgresServer() {
  for (pid_t orphan : orphans_) {
    kill_tree(orphan, true);
    int status;
    ::waitpid(orphan, &status, 0);  // ours: we are a child subreaper
  }
  if (process_.pid() > 0) kill_tree(process_.pid(), true);
  // What SIGKILL leaves: the shared-memory segment (nattch 0 now).
  struct shmid_ds ds {};
  if (shm_id_ >= 0 && ::shmctl(shm_id_, IPC_STAT, &ds) == 0 && ds.shm_perm.__key == shm_key_)
    ::shmctl(shm_id_, IPC_RMID, nullptr);
  if (!base_.empty()) (void)!std::system(("rm -rf " + shell_quoted(base_)).c_str());
}

std::string PostgresServer::log() const { return read_file(log_); }

std::string PostgresServer::init() {
  Child initdb = Child::spawn({"sh", "-c",
                               "exec setpriv --reuid=postgres --regid=postgres --init-groups " + bin("initdb") +
                                   " -D " + shell_quoted(data_) + " -A trust -U postgres --no-sync -N >" + shell_quoted(log_) +
                                   " 2>&1"});
  const int status = initdb.wait();
  return exit_code(status) == 0 ? std::string() : "initdb failed (" + std::to_string(exit_code(status)) + "): " + log();
}

std::string PostgresServer::start(const Options& options) {
  const std::string server =
      "setpriv --reuid=postgres --regid=postgres --init-groups " + bin("postgres") + " -D " + shell_quoted(data_) +
      " -p " + std::to_string(port_) + " -k " + shell_quoted(options.unix_socket ? sockets_ : "") +
      " -c listen_addresses=" + shell_quoted(options.unix_socket ? "" : "127.0.0.1") +
      " -c fsync=off -c shared_buffers=1MB -c max_connections=5" +
      // Dynamic shared memory in the data directory, removed with it: a
      // killed server's POSIX segments would stay in /dev/shm.
      " -c dynamic_shared_memory_type=mmap >>" + shell_quoted(log_) + " 2>&1";
  if (!options.own_namespaces) {
    process_ = Child::spawn({"sh", "-c", "exec " + server});
  } else {
    // pid 1 is the shell; with ns_last_pid set, the postmaster it forks
    // gets pid_inside.
    std::string script = server;
    if (options.pid_inside > 1)
      script = "echo " + std::to_string(options.pid_inside - 1) + " > /proc/sys/kernel/ns_last_pid && " + server;
    process_ = Child::spawn(
        {"unshare", "--pid", "--ipc", "--fork", "--mount-proc", "--kill-child", "sh", "-c", script});
  }
  const bool ready = eventually(
      [&] {
        std::vector<std::string> lines = lines_of(pidfile());
        return lines.size() >= 8 && lines[7].rfind("ready", 0) == 0;
      },
      std::chrono::seconds(60));
  if (!ready) return "PostgreSQL did not become ready: " + log();
  const std::vector<std::string> lines = lines_of(pidfile());
  std::istringstream shm(lines[6]);
  shm >> shm_key_ >> shm_id_;
  if (!options.own_namespaces) {
    postmaster_ = process_.pid();
  } else {
    // The postmaster here: the postgres process whose parent is no postgres.
    for (pid_t p : descendants(process_.pid()))
      if (comm_of(p) == "postgres" && comm_of(proc_parent(p)) != "postgres") postmaster_ = p;
    shm_id_ = -1;  // in the namespace's own IPC namespace: gone with it
  }
  return postmaster_ > 0 ? std::string() : "no postmaster found";
}

std::string PostgresServer::stop() {
  if (postmaster_ <= 0) return "not running";
  ::kill(postmaster_, SIGINT);
  const int status = process_.wait();
  postmaster_ = 0;
  return exit_code(status) == 0 ? std::string() : "postgres exited with " + std::to_string(exit_code(status));
}

void PostgresServer::kill_postmaster() {
  orphans_ = descendants(postmaster_);
  ::kill(postmaster_, SIGKILL);
  if (postmaster_ == process_.pid()) process_.wait();
}

void PostgresServer::kill_orphans() {
  for (pid_t orphan : orphans_) {
    kill_tree(orphan, true);
    int status;
    ::waitpid(orphan, &status, 0);
  }
  orphans_.clear();
}

Child PostgresServer::psql_in_background(const std::string& sql) {
  return Child::spawn({bin("psql"), "-X", "-q", "-h", sockets_, "-p", std::to_string(port_), "-U", "postgres", "-d",
                       "postgres", "-c", sql});
}

}  // namespace pidlock_recognise
