#include "fault_proxy.hpp"

#include "support/loopback.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <vector>

namespace pidlock_etcd_test {

namespace {

using Clock = std::chrono::steady_clock;
constexpr Clock::time_point kHeld = Clock::time_point::max();

struct Chunk {
  Clock::time_point due;
  std::string bytes;
};

// One direction of a connection: bytes read from `from`, waiting to be
// written to `to`.
struct Direction {
  int from = -1;
  int to = -1;
  std::deque<Chunk> queue;
  bool eof = false;       // `from` said EOF
  bool shut = false;      // EOF passed on to `to`
};

struct Connection {
  Direction up;    // client -> member
  Direction down;  // member -> client
  bool dead = false;
  ~Connection() {
    if (up.from >= 0) ::close(up.from);
    if (up.to >= 0) ::close(up.to);
  }
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int connect_to(int port) {
  int fd = pidlock_test::connect_loopback(port);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  return fd;
}

// Reads what `d.from` has; false when the connection must end.
bool pull(Direction& d, Clock::time_point due) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(d.from, buf, sizeof buf);
    if (n > 0) {
      d.queue.push_back({due, std::string(buf, static_cast<size_t>(n))});
      continue;
    }
    if (n == 0) {
      d.eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

// Writes the chunks that are due; false when the connection must end.
bool push(Direction& d, Clock::time_point now) {
  while (!d.queue.empty() && d.queue.front().due <= now) {
    Chunk& c = d.queue.front();
    ssize_t n = ::write(d.to, c.bytes.data(), c.bytes.size());
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.bytes.erase(0, static_cast<size_t>(n));
    if (!c.bytes.empty()) return true;
    d.queue.pop_front();
  }
  if (d.eof && d.queue.empty() && !d.shut) {
    ::shutdown(d.to, SHUT_WR);
    d.shut = true;
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(int target_port) {
  listen_fd_ = pidlock_test::bind_loopback(&port_, 128);
  if (listen_fd_ < 0) return;
  set_nonblocking(listen_fd_);
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return;
  target_port_ = target_port;
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, wake_pipe_[0], wake_pipe_[1]})
    if (fd >= 0) ::close(fd);
}

void FaultProxy::wake() {
  if (wake_pipe_[1] >= 0) (void)!::write(wake_pipe_[1], "x", 1);
}

void FaultProxy::pass() {
  mode_ = 0;
  wake();
}

void FaultProxy::drop() {
  mode_ = 1;
  wake();
}

void FaultProxy::delay(std::chrono::milliseconds d) {
  delay_ms_ = d.count();
  mode_ = 2;
  wake();
}

void FaultProxy::reset() {
  reset_requested_ = true;
  wake();
}

void FaultProxy::run() {
  std::vector<std::unique_ptr<Connection>> conns;
  int last_mode = 0;
  while (!stop_) {
    const int mode = mode_.load();
    const Clock::time_point now = Clock::now();
    if (mode != 1 && last_mode == 1) {
      // The partition healed: what TCP kept retransmitting gets through.
      for (auto& c : conns)
        for (Direction* d : {&c->up, &c->down})
          for (Chunk& chunk : d->queue)
            if (chunk.due == kHeld) chunk.due = now;
    }
    last_mode = mode;
    if (reset_requested_.exchange(false)) conns.clear();
    const Clock::time_point due =
        mode == 0 ? now : mode == 1 ? kHeld : now + std::chrono::milliseconds(delay_ms_.load());
    // Accept.
    for (;;) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client < 0) break;
      int member = connect_to(target_port_);
      if (member < 0) {
        ::close(client);  // the member is gone: refuse, as it would
        continue;
      }
      ++accepted_;
      auto c = std::make_unique<Connection>();
      c->up = Direction{client, member, {}, false, false};
      c->down = Direction{member, client, {}, false, false};
      conns.push_back(std::move(c));
    }
    // Move bytes.
    for (auto& c : conns) {
      for (Direction* d : {&c->up, &c->down}) {
        if (!d->eof && !pull(*d, due)) c->dead = true;
        if (!push(*d, now)) c->dead = true;
      }
      if (c->up.shut && c->down.shut) c->dead = true;
    }
    for (std::size_t i = 0; i < conns.size();) {
      if (conns[i]->dead) {
        conns[i] = std::move(conns.back());
        conns.pop_back();
      } else {
        ++i;
      }
    }
    // Sleep until something is readable, writable and due, or a chunk falls due.
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    Clock::time_point next = Clock::now() + std::chrono::milliseconds(100);
    for (auto& c : conns) {
      for (Direction* d : {&c->up, &c->down}) {
        short events = d->eof ? 0 : POLLIN;
        if (!d->queue.empty()) {
          if (d->queue.front().due <= Clock::now()) events |= POLLOUT;
          else if (d->queue.front().due < next) next = d->queue.front().due;
        }
        if (events & POLLIN) fds.push_back({d->from, POLLIN, 0});
        if (events & POLLOUT) fds.push_back({d->to, POLLOUT, 0});
      }
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(0, wait)));
    char drain[64];
    while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
    }
  }
}

}  // namespace pidlock_etcd_test
