// A server on 127.0.0.1 that is not etcd, for the misconfiguration tests:
// it answers every connection with the same bytes (an HTTP response, or
// something that is not HTTP at all) and closes it.
//
// One thread; loopback only.
#ifndef PIDLOCK_TESTS_ETCD_FAKE_SERVER_HPP
#define PIDLOCK_TESTS_ETCD_FAKE_SERVER_HPP

#include <atomic>
#include <string>
#include <thread>

namespace pidlock_etcd_test {

class FakeServer {
 public:
  // Answers with `reply` verbatim, after reading the request's head.
  explicit FakeServer(std::string reply);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

  // "HTTP/1.1 <status>" with a JSON content type and `body`.
  static std::string http(int status, const std::string& body, const std::string& type = "application/json");

 private:
  void run();

  std::string reply_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_FAKE_SERVER_HPP
