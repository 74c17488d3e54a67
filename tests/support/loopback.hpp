// TCP on 127.0.0.1 for tests that run servers (etcd members, fault
// proxies, fake servers): the kernel chooses the ports (bind to port 0),
// so that tests never collide with each other or with other programs on
// the machine. Only loopback traffic.
#ifndef PIDLOCK_TESTS_SUPPORT_LOOPBACK_HPP
#define PIDLOCK_TESTS_SUPPORT_LOOPBACK_HPP

#include <vector>

namespace pidlock_test {

// A close-on-exec TCP socket bound to 127.0.0.1 on a free port, listening
// when `backlog` > 0; *port receives the port. -1 on failure (nothing is
// left open).
int bind_loopback(int* port, int backlog = 0);
// A close-on-exec TCP socket connected to 127.0.0.1:port (a blocking
// connect); -1 on failure.
int connect_loopback(int port);
// `count` distinct free ports (0 for one that could not be had) for
// servers that another program binds (etcd). Every socket stays open until
// all ports are chosen, so they are distinct; they are closed on return,
// so another program may take one before the server binds it: rare, and
// the server then fails to start and says so in its log.
std::vector<int> free_loopback_ports(int count);

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_LOOPBACK_HPP
