/* pidlock's C API: exact, race-free lock files for programs written in C.
 *
 * A thin layer over the C++ API (<pidlock/pidlock.hpp>) in the same
 * library, libpidlock (static or shared), for daemons written in C that
 * guard a data directory the way PostgreSQL guards its own with
 * postmaster.pid. C99; every declaration is extern "C".
 *
 *   pidlock_error err;
 *   pidlock_acquire_options opts;
 *   pidlock_lock *lock;
 *   pidlock_acquire_options_init(&opts);
 *   opts.timeout_ms = 5000;                    (wait up to 5 s)
 *   if (pidlock_acquire("/srv/db/db.pid", &opts, &lock, NULL, &err) != 0) {
 *     fprintf(stderr, "%s\n", err.message);   (names the path and why)
 *     exit(1);
 *   }
 *   if (pidlock_took_over(lock)) run_crash_recovery();
 *   pidlock_update_status(lock, "ready", NULL);
 *   ...
 *   pidlock_release(lock, NULL);               (removes the file)
 *
 * Results. Every function that can fail returns 0 on success and a
 * positive errno value on failure, as pthread functions do; errno itself is
 * not used. System failures return their errno (EACCES, ENOSPC, EROFS, ...);
 * pidlock's own conditions map to these values:
 *
 *   EAGAIN (EWOULDBLOCK)  the lock is held by a live holder, or its state is
 *                         unknown (counts as held); no wait was asked
 *   ETIMEDOUT             still held when the timeout passed
 *   ECANCELED             the wait was cancelled (pidlock_cancel)
 *   EDEADLK               this process holds this lock already
 *   ELOOP                 the lock path is a symbolic link (never followed)
 *   ENOTSUP               a directory, FIFO, socket or device is at the path
 *   EMLINK                the file has other hard links: not a lock file
 *   EBUSY                 the lock kept being re-created by others
 *                         (max_attempts creations lost the race)
 *   ENOLCK                the lock was lost: its file was deleted, renamed,
 *                         replaced or rewritten by someone else
 *   EBADF                 the lock was already released
 *   EINVAL                a malformed argument (a status word with spaces,
 *                         a line out of range, a null pointer), or a
 *                         misconfigured lock address (etcd://)
 *   EPERM                 the data directory fails its safety checks
 *   ENOMEM                out of memory
 *   EIO                   anything else unexpected
 *
 * Messages. Every such function takes a `pidlock_error *err` last; when it
 * is not null and the call fails, err->code receives the result and
 * err->message a sentence naming the operation, the path and the reason
 * (for a held lock, who holds it and the evidence), e.g.
 *   lock file "/srv/db/db.pid" already exists: is another instance (PID 4242,
 *   ...) using data directory "/srv/db"? [held: a process holds the kernel
 *   lock on the file]
 * The caller owns the object, so messages are thread-safe.
 *
 * Thread safety: every function may be called from any thread. Calls on
 * one pidlock_lock are serialised inside; a lock may not be released while
 * another thread still uses it (release frees it), nor a watch freed while
 * another thread uses it. Objects returned by the library are owned by the
 * caller and freed with the matching *_free or pidlock_release.
 *
 * Processes: the lock is held through a descriptor (close-on-exec unless
 * `inheritable`). A forked child shares it; in the child, pidlock_release
 * only closes that descriptor, never removing the parent's file, unless the
 * child took the lock over with pidlock_claim (the daemonize flow).
 */
#ifndef PIDLOCK_PIDLOCK_H
#define PIDLOCK_PIDLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(PIDLOCK_STATIC_DEFINE)
#define PIDLOCK_C_EXPORT
#elif defined(__GNUC__) || defined(__clang__)
#define PIDLOCK_C_EXPORT __attribute__((visibility("default")))
#else
#define PIDLOCK_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A held lock (pidlock::LockHandle). */
typedef struct pidlock_lock pidlock_lock;
/* A verdict on a lock file, with its evidence (pidlock::Inspection). */
typedef struct pidlock_inspection pidlock_inspection;
/* A lock file's record: line 1 the pid, line 2 the data directory, line 3
 * the start time, then the application's lines and pidlock's fields
 * (pidlock::HolderRecord). */
typedef struct pidlock_record pidlock_record;
/* Watches a held lock for loss (pidlock::LockWatch). */
typedef struct pidlock_watch pidlock_watch;
/* Cancels waiting acquires from another thread or a signal handler
 * (pidlock::Canceller). */
typedef struct pidlock_canceller pidlock_canceller;

/* The error of one call; see "Messages" above. */
typedef struct pidlock_error {
  int code;           /* the call's result, 0 if it succeeded */
  char message[1024]; /* a sentence, NUL-terminated (truncated if longer) */
} pidlock_error;

/* What an inspection concluded. */
typedef enum pidlock_verdict {
  PIDLOCK_FREE = 0,    /* no lock file at the path */
  PIDLOCK_HELD = 1,    /* a live holder owns the lock */
  PIDLOCK_STALE = 2,   /* its holder is gone: it may be taken over */
  PIDLOCK_UNKNOWN = 3  /* the evidence cannot decide; counts as held */
} pidlock_verdict;

/* Why. The values follow pidlock::Reason; pidlock_reason_name gives the
 * word `pidlock status` prints ("zombie", "pid-reused", ...), and
 * docs/guide.md says what each one means. */
typedef enum pidlock_reason {
  PIDLOCK_REASON_NO_LOCK_FILE = 0,
  PIDLOCK_REASON_HELD_BY_THIS_PROCESS,
  PIDLOCK_REASON_KERNEL_LOCK_HELD,
  PIDLOCK_REASON_KERNEL_LOCK_FREE,
  PIDLOCK_REASON_EMPTY_FILE,
  PIDLOCK_REASON_UNPARSABLE,
  PIDLOCK_REASON_PID_ALIVE,
  PIDLOCK_REASON_PID_ALIVE_OTHER_USER,
  PIDLOCK_REASON_PID_DEAD,
  PIDLOCK_REASON_PID_DEAD_OTHER_USER,
  PIDLOCK_REASON_ZOMBIE,
  PIDLOCK_REASON_PID_REUSED,
  PIDLOCK_REASON_PID_IMPOSSIBLE,
  PIDLOCK_REASON_OWN_INCARNATION,
  PIDLOCK_REASON_OWN_PROCESS_UNPROVEN,
  PIDLOCK_REASON_OTHER_BOOT,
  PIDLOCK_REASON_OTHER_HOST,
  PIDLOCK_REASON_OTHER_PID_NAMESPACE,
  PIDLOCK_REASON_PROBE_FAILED,
  PIDLOCK_REASON_UNREADABLE,
  PIDLOCK_REASON_RELEASED,
  PIDLOCK_REASON_NOT_A_LOCK_RECORD,
  PIDLOCK_REASON_FLOCK_HELD,
  PIDLOCK_REASON_LOCK_FILE_OPEN,
  PIDLOCK_REASON_DATA_DIRECTORY_IN_USE,
  PIDLOCK_REASON_SHARED_MEMORY_ATTACHED,
  PIDLOCK_REASON_SOCKET_LISTENING,
  PIDLOCK_REASON_LEASE_ALIVE
} pidlock_reason;

/* How an existing lock file is judged (pidlock::JudgeOptions). */
typedef struct pidlock_judge_options {
  /* What kill(pid, 0) == EPERM means for a record without kernel-lock
   * evidence (PostgreSQL's own files): 0 (the default) the process may be
   * the holder, so the lock is held; 1 PostgreSQL's rule, a process of
   * another user cannot be a competitor, so it is stale. */
  int permission_denied_means_dead;
  /* Pids that cannot be a competitor (PostgreSQL: pg_ctl's pid, passed as
   * PG_GRANDPARENT_PID); our own and our parent's are always included.
   * May be null when own_pid_count is 0. */
  const pid_t *own_pids;
  size_t own_pid_count;
} pidlock_judge_options;

/* Options of pidlock_acquire (pidlock::AcquireOptions). Initialise with
 * pidlock_acquire_options_init, then change what you need. */
typedef struct pidlock_acquire_options {
  pidlock_judge_options judge;
  /* Line 2 of the record; null: the canonical path of the file's folder. */
  const char *data_directory;
  /* The initial status word (printable, no spaces, at most 32
   * characters); null: "starting". */
  const char *status;
  /* Waiting: 0 (default) fails at once with EAGAIN when held; non-zero
   * blocks until the lock is ours, woken by the kernel when the holder
   * releases or dies. */
  int wait;
  /* >= 0: wait at most this many milliseconds (implies wait), then fail
   * with ETIMEDOUT. -1 (default): no limit. */
  long timeout_ms;
  /* Longest single sleep of a waiting acquire, the safety net for file
   * systems inotify cannot see (NFS); default 1000. */
  long recheck_interval_ms;
  /* Permission bits of a new lock file (the umask does not apply);
   * default 0600. */
  unsigned mode;
  /* >= 0: the group id of a new lock file (with mode 0640 the group may
   * inspect the lock, with 0660 take it; only a group this process is a
   * member of, unless root: EPERM otherwise). -1 (default): the group a new
   * file gets. */
  long group;
  /* Non-zero (default): fsync the record and its folder after creating
   * it, so that it survives a power loss. */
  int durable;
  /* Non-zero: the lock descriptor stays open across exec, and with it the
   * lock. Default 0. */
  int inheritable;
  /* Bound on creation attempts when others keep re-creating the file;
   * default 100, as PostgreSQL. */
  int max_attempts;
  /* When non-null, pidlock_cancel on it makes a waiting acquire fail
   * with ECANCELED at once. */
  pidlock_canceller *canceller;
} pidlock_acquire_options;

/* Sets every option to its default. */
PIDLOCK_C_EXPORT void pidlock_acquire_options_init(pidlock_acquire_options *options);
/* Sets every judging option to its default. */
PIDLOCK_C_EXPORT void pidlock_judge_options_init(pidlock_judge_options *options);

/* Creates a canceller (an eventfd); free it with pidlock_canceller_free
 * after the waits that use it have returned. */
PIDLOCK_C_EXPORT int pidlock_canceller_new(pidlock_canceller **canceller, pidlock_error *err);
/* Makes every current and later wait using it fail with ECANCELED.
 * Async-signal-safe (one write), so a SIGTERM handler may call it. */
PIDLOCK_C_EXPORT void pidlock_cancel(pidlock_canceller *canceller);
/* A null canceller is a no-op. */
PIDLOCK_C_EXPORT void pidlock_canceller_free(pidlock_canceller *canceller);

/* ---- Acquiring and releasing -------------------------------------------- */

/* Acquires the lock file at `path`, creating it (its folder must exist).
 * On success *lock is the held lock, and the file holds this process's
 * record; pidlock_took_over says whether a stale lock was taken over (the
 * previous holder crashed: run recovery). On EAGAIN or ETIMEDOUT, when
 * `holder` is not null, *holder receives the holder's inspection (free it
 * with pidlock_inspection_free); otherwise *holder is set to null. After a
 * failure nothing is held and nothing was left behind. `options` may be
 * null (defaults). */
PIDLOCK_C_EXPORT int pidlock_acquire(const char *path, const pidlock_acquire_options *options,
                                     pidlock_lock **lock, pidlock_inspection **holder,
                                     pidlock_error *err);

/* Releases the lock and frees `lock` (whatever the result): removes the
 * file if it still holds this holder's record, then drops the kernel lock.
 * ENOLCK if the file had been deleted, replaced or rewritten by someone
 * else (nothing is removed then). In a forked child that did not claim the
 * lock only the child's descriptor is closed. A null lock is a no-op. */
PIDLOCK_C_EXPORT int pidlock_release(pidlock_lock *lock, pidlock_error *err);

/* ---- A held lock --------------------------------------------------------- */

/* The lock file's path (canonical folder and name); valid until release. */
PIDLOCK_C_EXPORT const char *pidlock_lock_path(const pidlock_lock *lock);
/* The lock file's descriptor, owned by the lock: do not close it. */
PIDLOCK_C_EXPORT int pidlock_lock_fd(const pidlock_lock *lock);
/* 1 if acquiring took over a stale lock (its holder died without
 * releasing it), else 0. */
PIDLOCK_C_EXPORT int pidlock_took_over(const pidlock_lock *lock);
/* The inspection of the previous holder when pidlock_took_over is 1 (why it
 * was stale, and its record); null otherwise. Owned by the lock. */
PIDLOCK_C_EXPORT const pidlock_inspection *pidlock_previous_holder(const pidlock_lock *lock);
/* A copy of the record this holder wrote, as last updated; free it with
 * pidlock_record_free. */
PIDLOCK_C_EXPORT int pidlock_lock_record(const pidlock_lock *lock, pidlock_record **record,
                                         pidlock_error *err);

/* Rewrites the status word in place (one pwrite of the whole record at
 * offset 0, never a truncate). EINVAL for a malformed word. */
PIDLOCK_C_EXPORT int pidlock_update_status(pidlock_lock *lock, const char *status,
                                           pidlock_error *err);
/* Writes or replaces the application's line `line` (4 to 8) of the record,
 * before pidlock's own fields, in the same way; missing lines before it are
 * written empty. This is how a program keeps its file's layout:
 * PostgreSQL's port, socket directory, listen address, shared-memory key
 * and status stay on lines 4 to 8. `text` is kept verbatim (no newline, at
 * most 512 bytes, not starting with "pidlock-format=" or "checksum="). */
PIDLOCK_C_EXPORT int pidlock_set_line(pidlock_lock *lock, unsigned line, const char *text,
                                      pidlock_error *err);
/* Makes `pid` the recorded holder (line 1 and its identity), for a child
 * that keeps the lock through an inherited descriptor. */
PIDLOCK_C_EXPORT int pidlock_update_holder_pid(pidlock_lock *lock, pid_t pid, pidlock_error *err);
/* In a forked child that inherited the lock: makes this process its
 * holder (the record names it; its release removes the file). */
PIDLOCK_C_EXPORT int pidlock_claim(pidlock_lock *lock, pidlock_error *err);
/* Sets the file's access and modification times to now (for /tmp
 * cleaners), through the descriptor. */
PIDLOCK_C_EXPORT int pidlock_touch(pidlock_lock *lock, pidlock_error *err);

/* Is the lock still ours: does the path still name this file, holding
 * this holder's pid? 0 if so; ENOLCK if it was lost (err->message says
 * how); another errno if the answer is open (an I/O error: PostgreSQL's
 * policy is to carry on then). Does not wait. */
PIDLOCK_C_EXPORT int pidlock_recheck(const pidlock_lock *lock, pidlock_error *err);

/* ---- Noticing a lost lock ------------------------------------------------ */

/* Starts watching `lock` for loss: inotify on the file and its folder,
 * plus a recheck every `recheck_interval_ms` (<= 0: 60000, PostgreSQL's
 * interval) as a safety net. The watch stays valid after the lock is
 * released (it then reports the loss), but must be freed before it. */
PIDLOCK_C_EXPORT int pidlock_watch_new(const pidlock_lock *lock, long recheck_interval_ms,
                                       pidlock_watch **watch, pidlock_error *err);
/* A descriptor that becomes readable (POLLIN) when something happened to
 * the file or the interval elapsed: add it to poll/epoll/select, and call
 * pidlock_watch_check when it is readable. Owned by the watch. */
PIDLOCK_C_EXPORT int pidlock_watch_fd(const pidlock_watch *watch);
/* Consumes what the descriptor reported and, if anything happened,
 * rechecks: 0 while the lock is ours, ENOLCK once it is lost (from then
 * on; err->message says why). Does not wait. */
PIDLOCK_C_EXPORT int pidlock_watch_check(pidlock_watch *watch, pidlock_error *err);
/* Frees the watch and its descriptors. A null watch is a no-op. */
PIDLOCK_C_EXPORT void pidlock_watch_free(pidlock_watch *watch);

/* ---- Judging a lock file without taking it ------------------------------- */

/* Judges the lock file at `path` (free, held, stale or unknown, with the
 * evidence) without taking anything or waiting. `options` may be null. */
PIDLOCK_C_EXPORT int pidlock_inspect(const char *path, const pidlock_judge_options *options,
                                     pidlock_inspection **inspection, pidlock_error *err);

/* Removes the lock file at `path` if, and only if, it is stale, with the
 * race-free rule of a take-over. *removed (if not null) is 1 when a file
 * was removed; a free, held or unknown lock is left alone (0, not an
 * error). When `inspection` is not null it receives the verdict the
 * decision rested on. */
PIDLOCK_C_EXPORT int pidlock_break_stale(const char *path, const pidlock_judge_options *options,
                                         int *removed, pidlock_inspection **inspection,
                                         pidlock_error *err);

PIDLOCK_C_EXPORT pidlock_verdict pidlock_inspection_verdict(const pidlock_inspection *inspection);
PIDLOCK_C_EXPORT pidlock_reason pidlock_inspection_reason(const pidlock_inspection *inspection);
/* One sentence for a person, e.g. "pid 4242 is a zombie (...)". */
PIDLOCK_C_EXPORT const char *pidlock_inspection_detail(const pidlock_inspection *inspection);
/* 1 if the verdict rests on the file's kernel lock, 0 if pid rules
 * decided (PostgreSQL's own files, file systems without locks). */
PIDLOCK_C_EXPORT int pidlock_inspection_kernel_lock_evidence(const pidlock_inspection *inspection);
/* The record the file held, or null; owned by the inspection. */
PIDLOCK_C_EXPORT const pidlock_record *pidlock_inspection_record(const pidlock_inspection *inspection);
/* A null inspection is a no-op. */
PIDLOCK_C_EXPORT void pidlock_inspection_free(pidlock_inspection *inspection);

/* "free", "held", "stale", "unknown". */
PIDLOCK_C_EXPORT const char *pidlock_verdict_name(pidlock_verdict verdict);
/* "kernel-lock-held", "zombie", "pid-reused", ... */
PIDLOCK_C_EXPORT const char *pidlock_reason_name(pidlock_reason reason);

/* ---- Logging --------------------------------------------------------------- */

/* Severities of pidlock's own log records (pidlock::LogThreshold). */
typedef enum pidlock_log_level {
  PIDLOCK_LOG_TRACE = 0,
  PIDLOCK_LOG_DEBUG,
  PIDLOCK_LOG_INFO,    /* acquisitions and releases (the default threshold) */
  PIDLOCK_LOG_WARNING, /* take-overs of stale locks, lost locks */
  PIDLOCK_LOG_ERROR,   /* failures */
  PIDLOCK_LOG_OFF      /* nothing */
} pidlock_log_level;

/* Receives one record: its level and its text (one line, no newline,
 * valid only during the call). It may be called from any thread that uses
 * pidlock, several at once; it must not call pidlock_set_log_handler. */
typedef void (*pidlock_log_handler)(void *context, pidlock_log_level level, const char *message);

/* pidlock prints nothing by itself: a program that wants its records
 * installs a handler (for the whole process, replacing the previous one;
 * NULL silences pidlock again). `context` is passed back unchanged.
 * docs/guide.md, "Logging", has recipes for syslog and journald. */
PIDLOCK_C_EXPORT void pidlock_set_log_handler(pidlock_log_handler handler, void *context);

/* Records below `level` are not made at all (default PIDLOCK_LOG_INFO);
 * PIDLOCK_LOG_OFF silences pidlock whatever the handler. */
PIDLOCK_C_EXPORT void pidlock_set_log_level(pidlock_log_level level);

/* ---- Records --------------------------------------------------------------
 * The strings are owned by the record; "" when absent. */

/* Line 1. Negative for a PostgreSQL single-user backend. */
PIDLOCK_C_EXPORT pid_t pidlock_record_pid(const pidlock_record *record);
/* Line 2. */
PIDLOCK_C_EXPORT const char *pidlock_record_data_directory(const pidlock_record *record);
/* Line 3, epoch seconds. */
PIDLOCK_C_EXPORT int64_t pidlock_record_start_time(const pidlock_record *record);
/* "pidlock", "postgresql", "pidfile", "filelock" or "none". */
PIDLOCK_C_EXPORT const char *pidlock_record_format(const pidlock_record *record);
/* The status word (pidlock's status= field, or a PostgreSQL file's line 8). */
PIDLOCK_C_EXPORT const char *pidlock_record_status(const pidlock_record *record);
/* host= (pidlock records). */
PIDLOCK_C_EXPORT const char *pidlock_record_host(const pidlock_record *record);
/* boot-id= (pidlock records). */
PIDLOCK_C_EXPORT const char *pidlock_record_boot_id(const pidlock_record *record);
/* Line `line` (4 to 8) as the file has it: an application line of a
 * pidlock record, or PostgreSQL's port, socket directory, listen address,
 * shared-memory key or status of a PostgreSQL file. Null when the record
 * has no such line. */
PIDLOCK_C_EXPORT const char *pidlock_record_line(const pidlock_record *record, unsigned line);
/* A null record is a no-op. */
PIDLOCK_C_EXPORT void pidlock_record_free(pidlock_record *record);

#ifdef __cplusplus
}
#endif

#endif /* PIDLOCK_PIDLOCK_H */
