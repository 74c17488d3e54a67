// pidlock_etcd_witness_job: the job that `pidlock run` runs in the etcd
// enforcement and churn tests, and the witness that no two such jobs ever
// run at once.
//
//   pidlock_etcd_witness_job WITNESS LOG HOLD_MS [ignore-term]
//
// It takes a kernel lock (flock) on the local file WITNESS without
// waiting. The kernel drops that lock exactly when the job's process ends,
// however it ends (SIGKILL included), so failing to get it means another
// job is running at this very moment: it appends "overlap PID TOKEN" to
// LOG and exits 3. Otherwise it appends "start PID TOKEN LOCK" (TOKEN and
// LOCK from PIDLOCK_FENCING_TOKEN and PIDLOCK_LOCK), runs for HOLD_MS
// milliseconds (ignoring SIGTERM if asked), appends "end PID TOKEN" and
// exits 0. Each line is one O_APPEND write, so lines never interleave.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void append(const char* log, const std::string& line) {
  int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string l = line + "\n";
  (void)!::write(fd, l.data(), l.size());
  ::close(fd);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "-";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const char* witness = argv[1];
  const char* log = argv[2];
  const long hold_ms = std::atol(argv[3]);
  if (argc > 4 && std::strcmp(argv[4], "ignore-term") == 0) ::signal(SIGTERM, SIG_IGN);
  const std::string me = std::to_string(::getpid()) + " " + env("PIDLOCK_FENCING_TOKEN");
  int fd = ::open(witness, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 2;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    append(log, "overlap " + me);
    return 3;
  }
  append(log, "start " + me + " " + env("PIDLOCK_LOCK"));
  timespec left{hold_ms / 1000, (hold_ms % 1000) * 1000000L};
  while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
  append(log, "end " + me);
  return 0;
}
