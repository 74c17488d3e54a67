/* The C API (include/pidlock/pidlock.h) from a C99 program, with real
 * processes: a forked child holds the lock, is SIGKILLed, deletes the
 * file under a watch. Every function of the API is called at least once.
 * Prints one line per check that fails and exits 1 if any did. */
#define _GNU_SOURCE
#include <pidlock/pidlock.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    ++checks;                                                              \
    if (!(cond)) {                                                         \
      ++failures;                                                          \
      fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
              current_test, #cond);                                        \
    }                                                                      \
  } while (0)
#define CHECK_RC(call, expected)                                                  \
  do {                                                                            \
    int rc_ = (call);                                                             \
    ++checks;                                                                     \
    if (rc_ != (expected)) {                                                      \
      ++failures;                                                                 \
      fprintf(stderr, "%s:%d: %s: %s returned %d (%s), expected %d (%s)\n",      \
              __FILE__, __LINE__, current_test, #call, rc_, strerror(rc_),        \
              (expected), strerror(expected));                                    \
    }                                                                             \
  } while (0)

static const char *current_test = "";
static char dir[] = "/tmp/pidlock-c-api-XXXXXX";

/* A path in the test's own folder. */
static const char *path_of(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* The file's line `n` (1-based) without its newline, or "" if absent. */
static const char *file_line(const char *path, int n) {
  static char line[1024];
  FILE *f = fopen(path, "r");
  int i;
  line[0] = '\0';
  if (f == NULL) return line;
  for (i = 1; i <= n; ++i) {
    if (fgets(line, sizeof line, f) == NULL) {
      line[0] = '\0';
      break;
    }
  }
  fclose(f);
  line[strcspn(line, "\n")] = '\0';
  return line;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* A child that acquires `path`, writes its result to `ready` and then waits
 * for a byte on `go` (or EOF) before releasing the lock and exiting. */
static pid_t holder_child(const char *path, int ready[2], int go[2]) {
  pid_t pid;
  if (pipe(ready) != 0 || pipe(go) != 0) abort();
  pid = fork();
  if (pid == 0) {
    pidlock_lock *lock = NULL;
    char byte = 0;
    int rc;
    close(ready[0]);
    close(go[1]);
    rc = pidlock_acquire(path, NULL, &lock, NULL, NULL);
    byte = (char)rc;
    if (write(ready[1], &byte, 1) != 1) _exit(3);
    if (read(go[0], &byte, 1) < 0) _exit(4);
    _exit(pidlock_release(lock, NULL) == 0 ? 0 : 5);
  }
  close(ready[1]);
  close(go[0]);
  return pid;
}

/* Waits for the child's acquire; returns its result. */
static int child_acquired(int ready[2]) {
  char byte = 1;
  if (read(ready[0], &byte, 1) != 1) return -1;
  return byte;
}

static int exit_status(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_acquire_record_and_release(void) {
  const char *path = path_of("basic.pid");
  pidlock_acquire_options options;
  pidlock_lock *lock = NULL;
  pidlock_record *record = NULL;
  pidlock_error err;
  struct stat st;
  current_test = "acquire_record_and_release";

  pidlock_acquire_options_init(&options);
  CHECK(options.timeout_ms == -1 && options.durable == 1 && options.mode == 0600 && options.group == -1);
  CHECK(options.max_attempts == 100 && options.wait == 0 && options.canceller == NULL);
  options.mode = 0644;
  /* Root may choose any group (nogroup, unlike its own); others their own. */
  options.group = geteuid() == 0 ? 65534L : (long)getegid();
  options.durable = 0;
  options.status = "booting";
  options.data_directory = "/srv/db";
  CHECK_RC(pidlock_acquire(path, &options, &lock, NULL, &err), 0);
  CHECK(err.code == 0 && err.message[0] == '\0');
  if (lock == NULL) return;
  CHECK(strcmp(pidlock_lock_path(lock), path) == 0);
  CHECK(pidlock_lock_fd(lock) >= 0);
  CHECK(pidlock_took_over(lock) == 0);
  CHECK(pidlock_previous_holder(lock) == NULL);
  CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644 && (long)st.st_gid == options.group);
  CHECK(atol(file_line(path, 1)) == (long)getpid());
  CHECK(strcmp(file_line(path, 2), "/srv/db") == 0);

  CHECK_RC(pidlock_lock_record(lock, &record, &err), 0);
  if (record != NULL) {
    CHECK(pidlock_record_pid(record) == getpid());
    CHECK(strcmp(pidlock_record_data_directory(record), "/srv/db") == 0);
    CHECK(pidlock_record_start_time(record) > 0);
    CHECK(strcmp(pidlock_record_format(record), "pidlock") == 0);
    CHECK(strcmp(pidlock_record_status(record), "booting") == 0);
    CHECK(pidlock_record_host(record)[0] != '\0');
    CHECK(pidlock_record_boot_id(record)[0] != '\0');
    CHECK(pidlock_record_line(record, 4) == NULL);
    pidlock_record_free(record);
  }
  CHECK_RC(pidlock_release(lock, &err), 0);
  CHECK(!exists(path));
  CHECK_RC(pidlock_release(NULL, &err), 0);
}

static void test_held_by_a_child(void) {
  const char *path = path_of("contended.pid");
  int ready[2], go[2];
  pid_t child;
  pidlock_lock *lock = NULL;
  pidlock_inspection *holder = NULL;
  pidlock_acquire_options options;
  pidlock_error err;
  current_test = "held_by_a_child";

  child = holder_child(path, ready, go);
  CHECK(child_acquired(ready) == 0);

  CHECK_RC(pidlock_acquire(path, NULL, &lock, &holder, &err), EAGAIN);
  CHECK(lock == NULL);
  CHECK(err.code == EAGAIN && strstr(err.message, path) != NULL);
  CHECK(holder != NULL);
  if (holder != NULL) {
    const pidlock_record *record = pidlock_inspection_record(holder);
    CHECK(pidlock_inspection_verdict(holder) == PIDLOCK_HELD);
    CHECK(pidlock_inspection_reason(holder) == PIDLOCK_REASON_KERNEL_LOCK_HELD);
    CHECK(strcmp(pidlock_reason_name(pidlock_inspection_reason(holder)), "kernel-lock-held") == 0);
    CHECK(strcmp(pidlock_verdict_name(pidlock_inspection_verdict(holder)), "held") == 0);
    CHECK(pidlock_inspection_kernel_lock_evidence(holder) == 1);
    CHECK(record != NULL && pidlock_record_pid(record) == child);
    pidlock_inspection_free(holder);
  }

  /* A timed wait gives up with ETIMEDOUT; no holder asked for. */
  pidlock_acquire_options_init(&options);
  options.timeout_ms = 50;
  CHECK_RC(pidlock_acquire(path, &options, &lock, NULL, &err), ETIMEDOUT);
  CHECK(strstr(err.message, "already exists") != NULL);

  /* A waiting acquire gets it once the child lets go. */
  options.timeout_ms = -1;
  options.wait = 1;
  CHECK(write(go[1], "x", 1) == 1);
  CHECK_RC(pidlock_acquire(path, &options, &lock, NULL, &err), 0);
  CHECK(exit_status(child) == 0);
  if (lock != NULL) {
    CHECK(atol(file_line(path, 1)) == (long)getpid());
    CHECK_RC(pidlock_release(lock, &err), 0);
  }
  close(ready[0]);
  close(go[1]);
}

static pidlock_canceller *alarm_canceller;
static void cancel_on_alarm(int signo) {
  (void)signo;
  pidlock_cancel(alarm_canceller);
}

static void test_cancel_from_a_signal_handler(void) {
  const char *path = path_of("cancelled.pid");
  int ready[2], go[2];
  pid_t child;
  pidlock_lock *lock = NULL;
  pidlock_acquire_options options;
  pidlock_error err;
  struct sigaction action;
  current_test = "cancel_from_a_signal_handler";

  child = holder_child(path, ready, go);
  CHECK(child_acquired(ready) == 0);
  CHECK_RC(pidlock_canceller_new(&alarm_canceller, &err), 0);
  memset(&action, 0, sizeof action);
  action.sa_handler = cancel_on_alarm;
  sigaction(SIGALRM, &action, NULL);
  pidlock_acquire_options_init(&options);
  options.wait = 1;
  options.canceller = alarm_canceller;
  alarm(1);
  CHECK_RC(pidlock_acquire(path, &options, &lock, NULL, &err), ECANCELED);
  alarm(0);
  pidlock_canceller_free(alarm_canceller);
  CHECK(write(go[1], "x", 1) == 1);
  CHECK(exit_status(child) == 0);
  close(ready[0]);
  close(go[1]);
}

/* The child is SIGKILLed and not yet reaped (a zombie): the lock is stale
 * at once, inspected, taken over with the evidence, or broken. */
static void test_stale_after_sigkill(void) {
  const char *path = path_of("killed.pid");
  int ready[2], go[2];
  pid_t child;
  pidlock_inspection *inspection = NULL;
  pidlock_lock *lock = NULL;
  pidlock_error err;
  int removed = -1;
  current_test = "stale_after_sigkill";

  child = holder_child(path, ready, go);
  CHECK(child_acquired(ready) == 0);
  CHECK(kill(child, SIGKILL) == 0);
  {
    /* Wait for the death without reaping: the zombie keeps its pid. */
    siginfo_t info;
    CHECK(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT) == 0);
  }
  CHECK_RC(pidlock_inspect(path, NULL, &inspection, &err), 0);
  if (inspection != NULL) {
    CHECK(pidlock_inspection_verdict(inspection) == PIDLOCK_STALE);
    CHECK(pidlock_inspection_reason(inspection) == PIDLOCK_REASON_KERNEL_LOCK_FREE);
    CHECK(pidlock_inspection_detail(inspection)[0] != '\0');
    pidlock_inspection_free(inspection);
  }
  CHECK_RC(pidlock_acquire(path, NULL, &lock, NULL, &err), 0);
  if (lock != NULL) {
    const pidlock_inspection *previous = pidlock_previous_holder(lock);
    CHECK(pidlock_took_over(lock) == 1);
    CHECK(previous != NULL);
    if (previous != NULL) {
      CHECK(pidlock_inspection_verdict(previous) == PIDLOCK_STALE);
      CHECK(pidlock_inspection_record(previous) != NULL &&
            pidlock_record_pid(pidlock_inspection_record(previous)) == child);
    }
    /* break_stale leaves a held lock alone. */
    CHECK_RC(pidlock_break_stale(path, NULL, &removed, NULL, &err), 0);
    CHECK(removed == 0 && exists(path));
    CHECK_RC(pidlock_release(lock, &err), 0);
  }
  CHECK(exit_status(child) == 128 + SIGKILL);
  close(ready[0]);
  close(go[1]);

  /* Once more, and break it instead of taking it over. */
  child = holder_child(path, ready, go);
  CHECK(child_acquired(ready) == 0);
  CHECK(kill(child, SIGKILL) == 0);
  CHECK(exit_status(child) == 128 + SIGKILL);
  CHECK_RC(pidlock_break_stale(path, NULL, &removed, &inspection, &err), 0);
  CHECK(removed == 1 && !exists(path));
  CHECK(inspection != NULL && pidlock_inspection_verdict(inspection) == PIDLOCK_STALE);
  pidlock_inspection_free(inspection);
  CHECK_RC(pidlock_inspect(path, NULL, &inspection, &err), 0);
  CHECK(inspection != NULL && pidlock_inspection_verdict(inspection) == PIDLOCK_FREE);
  CHECK(inspection != NULL && pidlock_inspection_record(inspection) == NULL);
  pidlock_inspection_free(inspection);
  close(ready[0]);
  close(go[1]);
}

/* PostgreSQL's layout: lines 4 to 8 are the application's, pidlock's own
 * fields follow; a status word and an application line change in place. */
static void test_lines_and_status(void) {
  const char *path = path_of("postmaster.pid");
  pidlock_lock *lock = NULL;
  pidlock_inspection *inspection = NULL;
  pidlock_error err;
  struct stat before, after;
  current_test = "lines_and_status";

  CHECK_RC(pidlock_acquire(path, NULL, &lock, NULL, &err), 0);
  if (lock == NULL) return;
  CHECK_RC(pidlock_set_line(lock, 4, "5432", &err), 0);
  CHECK_RC(pidlock_set_line(lock, 7, "  5432001    32768", &err), 0);
  CHECK_RC(pidlock_set_line(lock, 8, "starting", &err), 0);
  CHECK(stat(path, &before) == 0);
  CHECK_RC(pidlock_set_line(lock, 8, "ready   ", &err), 0);
  CHECK_RC(pidlock_update_status(lock, "ready", &err), 0);
  CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino);
  CHECK(atol(file_line(path, 1)) == (long)getpid());
  CHECK(strcmp(file_line(path, 4), "5432") == 0);
  CHECK(strcmp(file_line(path, 5), "") == 0);
  CHECK(strcmp(file_line(path, 6), "") == 0);
  CHECK(strcmp(file_line(path, 7), "  5432001    32768") == 0);
  CHECK(strcmp(file_line(path, 8), "ready   ") == 0);
  CHECK(strcmp(file_line(path, 9), "pidlock-format=1") == 0);

  CHECK_RC(pidlock_inspect(path, NULL, &inspection, &err), 0);
  if (inspection != NULL) {
    const pidlock_record *record = pidlock_inspection_record(inspection);
    CHECK(pidlock_inspection_reason(inspection) == PIDLOCK_REASON_HELD_BY_THIS_PROCESS);
    CHECK(record != NULL);
    if (record != NULL) {
      CHECK(strcmp(pidlock_record_line(record, 4), "5432") == 0);
      CHECK(strcmp(pidlock_record_line(record, 8), "ready   ") == 0);
      CHECK(pidlock_record_line(record, 9) == NULL);
      CHECK(strcmp(pidlock_record_status(record), "ready") == 0);
    }
    pidlock_inspection_free(inspection);
  }

  CHECK_RC(pidlock_set_line(lock, 3, "x", &err), EINVAL);
  CHECK_RC(pidlock_set_line(lock, 9, "x", &err), EINVAL);
  CHECK_RC(pidlock_set_line(lock, 5, "two\nlines", &err), EINVAL);
  CHECK_RC(pidlock_set_line(lock, 5, "pidlock-format=2", &err), EINVAL);
  CHECK_RC(pidlock_update_status(lock, "two words", &err), EINVAL);
  CHECK(strstr(err.message, path) != NULL);
  CHECK_RC(pidlock_update_status(NULL, "ready", &err), EINVAL);
  CHECK(strcmp(file_line(path, 8), "ready   ") == 0);
  CHECK_RC(pidlock_release(lock, &err), 0);
}

static void test_recheck_watch_and_loss(void) {
  const char *path = path_of("watched.pid");
  pidlock_lock *lock = NULL;
  pidlock_watch *watch = NULL;
  pidlock_error err;
  struct pollfd p;
  pid_t child;
  current_test = "recheck_watch_and_loss";

  CHECK_RC(pidlock_acquire(path, NULL, &lock, NULL, &err), 0);
  if (lock == NULL) return;
  CHECK_RC(pidlock_recheck(lock, &err), 0);
  CHECK_RC(pidlock_watch_new(lock, 0, &watch, &err), 0);
  if (watch == NULL) return;
  CHECK(pidlock_watch_fd(watch) >= 0);
  CHECK_RC(pidlock_watch_check(watch, &err), 0);

  /* Another process deletes the file: the descriptor becomes readable. */
  child = fork();
  if (child == 0) _exit(unlink(path) == 0 ? 0 : 1);
  CHECK(exit_status(child) == 0);
  p.fd = pidlock_watch_fd(watch);
  p.events = POLLIN;
  p.revents = 0;
  CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN));
  CHECK_RC(pidlock_watch_check(watch, &err), ENOLCK);
  CHECK(strstr(err.message, "lost") != NULL);
  CHECK_RC(pidlock_watch_check(watch, &err), ENOLCK);
  CHECK_RC(pidlock_recheck(lock, &err), ENOLCK);
  CHECK(strstr(err.message, path) != NULL);
  pidlock_watch_free(watch);
  CHECK_RC(pidlock_release(lock, &err), ENOLCK);
  pidlock_watch_free(NULL);
}

static void test_path_errors(void) {
  const char *path = path_of("twice.pid");
  pidlock_lock *lock = NULL, *second = NULL;
  pidlock_error err;
  current_test = "path_errors";

  CHECK_RC(pidlock_acquire(path, NULL, &lock, NULL, &err), 0);
  CHECK_RC(pidlock_acquire(path, NULL, &second, NULL, &err), EDEADLK);
  CHECK(second == NULL);
  CHECK_RC(pidlock_release(lock, NULL), 0);

  CHECK(symlink("elsewhere", path_of("link.pid")) == 0);
  CHECK_RC(pidlock_acquire(path_of("link.pid"), NULL, &lock, NULL, &err), ELOOP);
  CHECK(mkdir(path_of("dir.pid"), 0700) == 0);
  CHECK_RC(pidlock_acquire(path_of("dir.pid"), NULL, &lock, NULL, &err), ENOTSUP);
  CHECK_RC(pidlock_acquire(path_of("no/such/folder.pid"), NULL, &lock, NULL, &err), ENOENT);
  CHECK(strstr(err.message, "no/such/folder.pid") != NULL);
  CHECK_RC(pidlock_acquire(NULL, NULL, &lock, NULL, &err), EINVAL);
  {
    /* A file with a second hard link is not a lock file of ours. */
    char linked[256];
    int fd;
    snprintf(linked, sizeof linked, "%s", path_of("linked.pid"));
    fd = open(linked, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0 && write(fd, "1\n", 2) == 2);
    close(fd);
    CHECK(link(linked, path_of("linked-too")) == 0);
    CHECK_RC(pidlock_acquire(linked, NULL, &lock, NULL, &err), EMLINK);
    CHECK(exists(linked));
  }
}

/* A daemonizing server: the forked child claims the lock and its release
 * removes the file; update_holder_pid names another process. */
static void test_claim_touch_and_holder_pid(void) {
  const char *path = path_of("daemon.pid");
  pidlock_lock *lock = NULL;
  pidlock_error err;
  struct timeval old_times[2];
  struct stat st;
  pid_t child;
  int go[2];
  current_test = "claim_touch_and_holder_pid";

  CHECK_RC(pidlock_acquire(path, NULL, &lock, NULL, &err), 0);
  if (lock == NULL) return;

  old_times[0].tv_sec = old_times[1].tv_sec = 1000000000;
  old_times[0].tv_usec = old_times[1].tv_usec = 0;
  CHECK(utimes(path, old_times) == 0);
  CHECK_RC(pidlock_touch(lock, &err), 0);
  CHECK(stat(path, &st) == 0 && st.st_mtime > 1000000000);

  CHECK_RC(pidlock_update_holder_pid(lock, 1, &err), 0);
  CHECK(atol(file_line(path, 1)) == 1);
  CHECK_RC(pidlock_update_holder_pid(lock, getpid(), &err), 0);
  CHECK(atol(file_line(path, 1)) == (long)getpid());

  /* The parent lets go first (the child's share keeps the lock held and
   * the file in place), then the child claims the lock. */
  if (pipe(go) != 0) abort();
  child = fork();
  if (child == 0) {
    pidlock_record *record = NULL;
    char byte;
    close(go[1]);
    if (read(go[0], &byte, 1) != 0) _exit(6);
    if (pidlock_claim(lock, NULL) != 0) _exit(1);
    if (pidlock_lock_record(lock, &record, NULL) != 0 || pidlock_record_pid(record) != getpid()) _exit(2);
    pidlock_record_free(record);
    if (atol(file_line(path, 1)) != (long)getpid()) _exit(3);
    _exit(pidlock_release(lock, NULL) == 0 ? 0 : 4);
  }
  close(go[0]);
  CHECK_RC(pidlock_release(lock, &err), 0);
  CHECK(exists(path));
  close(go[1]);
  CHECK(exit_status(child) == 0);
  CHECK(!exists(path));
}

/* A log handler that writes each record as a line to the descriptor its
 * context points at. */
static void write_record(void *context, pidlock_log_level level, const char *message) {
  char line[600];
  int n = snprintf(line, sizeof line, "%d %s\n", (int)level, message);
  if (n > 0) (void)!write(*(int *)context, line, (size_t)n);
}

/* Bytes pidlock writes to stdout and stderr while a child acquires and
 * releases a lock at log level `level`, with write_record installed as
 * the handler (or none, if `with_handler` is 0). */
static long logged_bytes(pidlock_log_level level, int with_handler) {
  int out[2];
  long total = 0;
  ssize_t n;
  char buf[512];
  pid_t child;
  if (pipe(out) != 0) abort();
  child = fork();
  if (child == 0) {
    pidlock_lock *lock = NULL;
    dup2(out[1], STDERR_FILENO);
    dup2(out[1], STDOUT_FILENO);
    static int sink = STDERR_FILENO;
    pidlock_set_log_level(level);
    if (with_handler) pidlock_set_log_handler(write_record, &sink);
    if (pidlock_acquire(path_of("logged.pid"), NULL, &lock, NULL, NULL) != 0) _exit(1);
    _exit(pidlock_release(lock, NULL) == 0 ? 0 : 2);
  }
  close(out[1]);
  while ((n = read(out[0], buf, sizeof buf)) > 0) total += n;
  close(out[0]);
  return exit_status(child) == 0 ? total : -1;
}

static void test_log_level(void) {
  current_test = "log_level";
  CHECK(logged_bytes(PIDLOCK_LOG_INFO, 1) > 0);
  CHECK(logged_bytes(PIDLOCK_LOG_OFF, 1) == 0);
  CHECK(logged_bytes(PIDLOCK_LOG_INFO, 0) == 0); /* silent without a handler */
}

int main(void) {
  pidlock_set_log_level(PIDLOCK_LOG_OFF); /* the checks report; the library need not */
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  test_acquire_record_and_release();
  test_held_by_a_child();
  test_cancel_from_a_signal_handler();
  test_stale_after_sigkill();
  test_lines_and_status();
  test_recheck_watch_and_loss();
  test_path_errors();
  test_claim_touch_and_holder_pid();
  test_log_level();
  printf("%d checks, %d failed\n", checks, failures);
  {
    char command[300];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  return failures == 0 ? 0 : 1;
}
