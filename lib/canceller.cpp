#include <pidlock/canceller.hpp>
#include <pidlock/error.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace pidlock {

Canceller::Canceller() {
  fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd_ < 0) throw Error(std::error_code(errno, std::system_category()), "create canceller", "");
}

Canceller::~Canceller() {
  if (fd_ >= 0) ::close(fd_);
}

void Canceller::cancel() noexcept {
  // The counter stays non-zero (readable) until reset(), so every waiter,
  // present and future, sees the cancellation.
  std::uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

bool Canceller::cancelled() const noexcept {
  struct pollfd p {fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void Canceller::reset() noexcept {
  std::uint64_t value;
  while (::read(fd_, &value, sizeof value) > 0) {
  }
}

}  // namespace pidlock
