#include "process_setup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace pidlock::cli {

namespace {

struct sigaction g_original_sigpipe {};
bool g_sigpipe_changed = false;

}  // namespace

void prepare_process() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open() returns the lowest free descriptor, which is `fd`: the lower
    // ones are open already. Without /dev/null (a bare chroot) the
    // descriptor stays closed; nothing better can be done.
    int opened = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (opened >= 0 && opened != fd) close(opened);
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  g_sigpipe_changed = sigaction(SIGPIPE, &ignore, &g_original_sigpipe) == 0;
}

void restore_process_in_child() noexcept {
  if (g_sigpipe_changed) sigaction(SIGPIPE, &g_original_sigpipe, nullptr);
}

}  // namespace pidlock::cli
