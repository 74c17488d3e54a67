// A TCP proxy on 127.0.0.1 in front of one etcd member, for the fault tests:
// it passes traffic through, drops it, or delays it, switchable at any time.
//
// "Drop" is a partition as TCP sees one: connections stay open (new ones
// are accepted), but no byte gets through in either direction. Bytes sent
// meanwhile are held, as the sender's TCP would keep retransmitting them,
// and delivered when the partition heals; reset() instead tears every
// connection down, as a partition that outlasts TCP's patience does.
// "Delay" holds every byte for a fixed time before passing it on.
//
// Loopback only. One thread per proxy; thread-safe controls.
#ifndef PIDLOCK_TESTS_ETCD_FAULT_PROXY_HPP
#define PIDLOCK_TESTS_ETCD_FAULT_PROXY_HPP

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

namespace pidlock_etcd_test {

class FaultProxy {
 public:
  // Listens on a free loopback port and forwards to 127.0.0.1:target_port.
  explicit FaultProxy(int target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  void pass();                              // forward at once (releases held bytes)
  void drop();                              // forward nothing until pass()/delay()
  void delay(std::chrono::milliseconds d);  // forward each byte d after it came
  void reset();                             // close every connection now
  // Connections accepted so far.
  int connections() const { return accepted_.load(); }

 private:
  void run();
  void wake();

  int port_ = 0;
  int target_port_ = 0;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<int> mode_{0};  // 0 pass, 1 drop, 2 delay
  std::atomic<long long> delay_ms_{0};
  std::atomic<bool> reset_requested_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_FAULT_PROXY_HPP
