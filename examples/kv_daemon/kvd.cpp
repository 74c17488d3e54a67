// kvd: a toy key-value server whose data directory is guarded by pidlock.
//
//   kvd --data-dir DIR [--verbose]
//
// Serves lines over the Unix socket DIR/kvd.sock:
//   SET key value   -> OK              (value: the rest of the line)
//   GET key         -> VALUE value | NOT_FOUND
//   DEL key         -> OK | NOT_FOUND
// Every change is appended to DIR/kvd.log and fsync'd before the reply, so
// an acknowledged write survives a crash.
//
// What it shows, in the order a database's start-up does it:
//   1. guard_data_directory: a second kvd on DIR is refused (exit 75);
//   2. took_over(): the last kvd died without shutting down, so the log may
//      end with a torn write; recovery drops it before serving;
//   3. lock_unix_socket, then bind/listen; status starting -> ready;
//   4. a LockWatch in the poll() loop: if the lock file is deleted or
//      replaced, another kvd may start on DIR, so stop at once (exit 1);
//   5. SIGTERM/SIGINT: status stopping, remove the socket, release_all (exit 0).
#include <pidlock/pidlock.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = boost::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // also: the lock was lost while serving
constexpr int kExitUsage = 64;   // EX_USAGE
constexpr int kExitHeld = 75;    // EX_TEMPFAIL, as `pidlock run`: try again later

void fail(const std::string& what) { std::cerr << "kvd: " << what << std::endl; }
std::string errno_text(const std::string& call) { return call + ": " + std::strerror(errno); }

// pidlock's records go to stderr in kvd's own format (the library prints
// nothing unless a handler is installed).
void route_pidlock_log(bool verbose) {
  pidlock::set_log_handler([](pidlock::LogLevel level, std::string_view message) {
    std::cerr << "kvd: pidlock " << pidlock::to_string(level) << ": " << message << std::endl;
  });
  // Take-overs and losses are warnings; acquisitions only with --verbose.
  pidlock::set_log_threshold(verbose ? pidlock::LogThreshold::kDebug : pidlock::LogThreshold::kWarning);
}

// The store: a map in memory, an append-only log of "SET k v" / "DEL k"
// lines on disk. Single-threaded, like the rest of kvd.
class Store {
 public:
  ~Store() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Opens (creating) the log and replays it. A crash in the middle of an
  // append leaves a last line without its newline; that write was never
  // acknowledged, so recovery cuts it off. A clean start never finds one
  // (only a holder that died does), so there it means damage: refuse.
  bool open(const fs::path& file, bool recover, std::string& error) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) return error = errno_text("open " + file.string()), false;
    std::string bytes;
    char buffer[65536];
    for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) != 0;) {
      if (n < 0) return error = errno_text("read " + file.string()), false;
      bytes.append(buffer, static_cast<std::size_t>(n));
    }
    const std::size_t end = bytes.find_last_of('\n') + 1;  // 0 when there is no newline at all
    std::istringstream lines(bytes.substr(0, end));
    for (std::string line; std::getline(lines, line);) {
      if (!apply(line)) return error = "bad record in " + file.string() + ": \"" + line + '"', false;
      ++replayed_;
    }
    torn_bytes_ = bytes.size() - end;
    if (torn_bytes_ == 0) return true;
    if (!recover) return error = file.string() + " ends with a torn write, yet the last shutdown was clean", false;
    if (::ftruncate(fd_, static_cast<off_t>(end)) != 0 || ::fsync(fd_) != 0)
      return error = errno_text("truncate " + file.string()), false;
    return true;
  }

  std::size_t replayed() const { return replayed_; }
  std::size_t torn_bytes() const { return torn_bytes_; }

  // Appends `line` and syncs it; applies it only once it is durable.
  bool append(const std::string& line) {
    std::string record = line + '\n';
    for (std::size_t done = 0; done < record.size();) {
      ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return ::fdatasync(fd_) == 0 && apply(line);
  }

  const std::string* get(const std::string& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  bool contains(const std::string& key) const { return map_.count(key) != 0; }

 private:
  bool apply(const std::string& line) {
    if (line.compare(0, 4, "SET ") == 0) {
      std::size_t space = line.find(' ', 4);
      if (space == std::string::npos || space == 4) return false;
      map_[line.substr(4, space - 4)] = line.substr(space + 1);
      return true;
    }
    if (line.compare(0, 4, "DEL ") == 0 && line.size() > 4) return map_.erase(line.substr(4)), true;
    return false;
  }

  int fd_ = -1;
  std::map<std::string, std::string> map_;
  std::size_t replayed_ = 0;
  std::size_t torn_bytes_ = 0;
};

struct Client {
  int fd;
  std::string in, out;
};

// One request line -> one reply line. `lock_ok` is asked before a write:
// a kvd that has lost its lock must not acknowledge anything any more.
template <typename LockOk>
std::string handle(const std::string& line, Store& store, LockOk lock_ok) {
  std::istringstream words(line);
  std::string command, key;
  words >> command >> key;
  if (key.empty()) return "ERR usage: SET key value | GET key | DEL key";
  if (command == "GET") {
    const std::string* value = store.get(key);
    return value ? "VALUE " + *value : "NOT_FOUND";
  }
  if (command != "SET" && command != "DEL") return "ERR unknown command " + command;
  if (!lock_ok()) return "ERR shutting down";
  if (command == "DEL" && !store.contains(key)) return "NOT_FOUND";
  std::string record = command + ' ' + key;
  if (command == "SET") {
    std::string value;  // the rest of the line after one space, spaces and all
    words.get();
    std::getline(words, value);
    record += ' ' + value;
  }
  return store.append(record) ? "OK" : "ERR " + std::string(std::strerror(errno));
}

// Writes what the client will take now; the rest waits for POLLOUT.
bool flush(Client& client) {
  while (!client.out.empty()) {
    ssize_t n = ::send(client.fd, client.out.data(), client.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    client.out.erase(0, static_cast<std::size_t>(n));
  }
  return true;
}

int listen_on(const fs::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof address.sun_path) return errno = ENAMETOOLONG, -1;
  std::strcpy(address.sun_path, path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 16) != 0) {
    int saved = errno;
    ::close(fd);
    return errno = saved, -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path data_dir;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--data-dir" && i + 1 < argc) data_dir = argv[++i];
    else if (arg == "--verbose") verbose = true;
    else return fail("usage: kvd --data-dir DIR [--verbose]"), kExitUsage;
  }
  if (data_dir.empty()) return fail("usage: kvd --data-dir DIR [--verbose]"), kExitUsage;
  route_pidlock_log(verbose);

  // Signals arrive through a descriptor in the poll() loop. Blocked first,
  // so that a SIGTERM during start-up waits for the loop instead of killing
  // kvd half-started.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) return fail(errno_text("signalfd")), kExitFailure;

  // Declared before the handles it hands out: it outlives them, and its
  // destructor would release whatever an early return leaves held.
  pidlock::LockManager locks;
  pidlock::LockHandle data_lock;
  try {
    data_lock = pidlock::guard_data_directory(locks, data_dir);
  } catch (const pidlock::LockHeldError& e) {
    return fail(e.what()), kExitHeld;  // names the live holder's pid
  } catch (const pidlock::Error& e) {
    return fail(e.what()), kExitFailure;  // unsafe directory, EACCES, ...
  }
  const fs::path dir = data_lock.path().parent_path();  // canonical
  std::cout << "kvd: pid " << ::getpid() << " holds " << data_lock.path().string() << std::endl;

  // The lock is ours, so nobody else writes the log: recover it, then load.
  Store store;
  std::string error;
  if (!store.open(dir / "kvd.log", data_lock.took_over(), error)) return fail(error), kExitFailure;
  if (data_lock.took_over()) {
    const pidlock::Inspection& previous = *data_lock.previous_holder();
    std::cout << "kvd: recovered after unclean shutdown of pid " << (previous.holder ? previous.holder->pid : 0)
              << " (" << pidlock::to_string(previous.reason) << "): replayed " << store.replayed()
              << " records, dropped " << store.torn_bytes() << " bytes of a torn write" << std::endl;
  }

  // The socket lock is taken before bind(): it removes a socket a killed
  // kvd left behind, which would make bind() fail with EADDRINUSE.
  const fs::path socket_path = dir / "kvd.sock";
  pidlock::LockHandle socket_lock;
  try {
    socket_lock = pidlock::lock_unix_socket(locks, socket_path);
  } catch (const pidlock::Error& e) {
    return fail(e.what()), kExitFailure;
  }
  const int listen_fd = listen_on(socket_path);
  if (listen_fd < 0) return fail(errno_text("listen on " + socket_path.string())), kExitFailure;

  // Notices within milliseconds (inotify) that the lock file was deleted,
  // renamed or overwritten; the once-a-minute recheck is PostgreSQL's
  // safety net for file systems inotify cannot see.
  pidlock::LockWatch watch(data_lock);
  data_lock.update_status("ready");
  std::cout << "kvd: ready on " << socket_path.string() << std::endl;

  std::vector<Client> clients;
  std::string lost;  // why the lock was lost, once it was
  auto lock_ok = [&] {
    if (lost.empty() && !watch.check()) lost = watch.loss_reason();
    return lost.empty();
  };
  for (bool stop = false; !stop && lost.empty();) {
    std::vector<pollfd> fds = {{signal_fd, POLLIN, 0}, {watch.native_handle(), POLLIN, 0}, {listen_fd, POLLIN, 0}};
    for (const Client& c : clients) fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return fail(errno_text("poll")), kExitFailure;
    }
    if (fds[0].revents & POLLIN) stop = true;  // SIGTERM or SIGINT
    if (fds[1].revents & POLLIN) lock_ok();
    if (fds[2].revents & POLLIN) {
      for (int fd; (fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;)
        clients.push_back({fd, {}, {}});
    }
    // fds[3 + i] belongs to clients[i]: new clients were appended after them.
    for (std::size_t i = 0; i + 3 < fds.size(); ++i) {
      Client& c = clients[i];
      bool open = true;
      if (fds[i + 3].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buffer[4096];
        ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n > 0) c.in.append(buffer, static_cast<std::size_t>(n));
        else if (n == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
        for (std::size_t eol; (eol = c.in.find('\n')) != std::string::npos;) {
          std::string line = c.in.substr(0, eol);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          c.in.erase(0, eol + 1);
          c.out += handle(line, store, lock_ok) + '\n';
        }
        if (c.in.size() > 65536) open = false;  // no newline in sight: not a client of ours
      }
      if (!flush(c) || !open) c.fd = (::close(c.fd), -1);
    }
    clients.erase(std::remove_if(clients.begin(), clients.end(), [](const Client& c) { return c.fd < 0; }),
                  clients.end());
  }

  // Shutdown. Stop serving first, so that no client sees a half-stopped kvd.
  for (const Client& c : clients) ::close(c.fd);
  ::close(listen_fd);
  if (!lost.empty()) {
    // Another kvd may already own DIR: touch nothing in it but our own
    // socket (its lock is still ours), and do not say "stopping" in a file
    // that may be someone else's now (update_status would refuse anyway).
    fail("data directory lock file is invalid; shutting down (" + lost + ")");
    ::unlink(socket_path.c_str());
    (void)locks.release_all();  // the data lock reports lock_lost: expected
    return kExitFailure;
  }
  std::cout << "kvd: stopping" << std::endl;
  std::error_code ec;
  data_lock.update_status("stopping", ec);
  // The socket goes before its lock: while the lock is ours no other kvd
  // can be binding a socket at that path.
  if (::unlink(socket_path.c_str()) != 0) fail(errno_text("unlink " + socket_path.string()));
  // Releases the socket lock, then the data-directory lock (reverse order
  // of acquisition), removing both files.
  if (std::error_code release_error = locks.release_all(); release_error || ec) {
    fail("unclean shutdown: " + (release_error ? release_error : ec).message());
    return kExitFailure;
  }
  std::cout << "kvd: shut down cleanly" << std::endl;
  return kExitOk;
}
