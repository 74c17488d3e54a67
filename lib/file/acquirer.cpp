#include "file/acquirer.hpp"

#include "core/judge.hpp"
#include "core/log.hpp"
#include "file/takeover.hpp"

#include <boost/filesystem/operations.hpp>

#include <fcntl.h>

#include <cstring>
#include <thread>

namespace pidlock::detail {

Acquirer::Acquirer(const boost::filesystem::path& path, const AcquireOptions& options)
    : path_(path), options_(options), waits_(options.wait || options.timeout.has_value()) {}

std::shared_ptr<FileLock> Acquirer::run(Failure* failure, Inspection* held) {
  failure_ = start();
  Step step = failure_ ? Step::kDone : Step::kAgain;
  while (step != Step::kDone) step = advance(step);
  // A wait that ended (deadline, cancel, error) may still be announced; the
  // failure already holds its errno.
  if (announced_.fd.valid()) leave_announced(loc_, announced_);
  *failure = std::move(failure_);
  if (failure->code == make_error_code(errc::held)) *held = std::move(held_);
  return std::move(result_);
}

// The checks and the record, before the first look at the path.
Failure Acquirer::start() {
  if (options_.max_attempts < 1)
    return pidlock_failure(errc::invalid_argument, "acquire", "max_attempts must be at least 1");
  if (Failure f = open_location(path_, &loc_)) return f;
  record_ = own_record();
  self_.pid = record_.pid;  // only the pid is used; judge() calls get a full identity
  record_.status = options_.status;
  record_.data_directory = options_.data_directory.empty()
                               ? loc_.folder
                               : boost::filesystem::absolute(options_.data_directory).lexically_normal().string();
  if (record_.data_directory.find('\n') != std::string::npos)
    return pidlock_failure(errc::invalid_argument, "acquire", "the data directory contains a newline");
  return {};
}

Acquirer::Step Acquirer::advance(Step step) {
  switch (step) {
    case Step::kAgain:
      found_ = Examined{};  // closes the last look's file, dropping any lock we took only to judge it
      return announced_.fd.valid() ? wait_in_place() : create();
    case Step::kRetry: return retry();
    case Step::kPause: return pause();
    case Step::kExamine: return examine_existing();
    case Step::kDecide: return decide();
    case Step::kDone: break;
  }
  return Step::kDone;
}

Acquirer::Step Acquirer::retry() {
  if (!waits_ && ++attempts_ >= options_.max_attempts)
    return fail(pidlock_failure(errc::too_many_attempts, "acquire",
                                "the lock file was re-created " + std::to_string(options_.max_attempts) +
                                    " times while we tried to take it over"));
  return Step::kAgain;
}

// Another process is in the middle of taking the file over: look again
// after kContestedPause, at most kContestedRetries times.
Acquirer::Step Acquirer::pause() {
  ++contested_;
  std::this_thread::sleep_for(kContestedPause);
  return Step::kAgain;
}

// Creates our file at the lock's name; EEXIST (or a contender that took
// our young file from us) sends us to the file that is there.
Acquirer::Step Acquirer::create() {
  bool lost = false;
  if (Failure f = create_at_name(loc_, options_, record_, &created_, &lost)) {
    created_.reset();
    return fail(std::move(f));
  }
  if (!lost) return finish_created();
  if (waits_ && !waiter_) {
    waiter_.emplace(options_.timeout, options_.canceller, options_.recheck_interval);
    if (Failure f = waiter_->start()) return fail(std::move(f));
  }
  return Step::kExamine;
}

// Our file has the name, our lock and our record. A durable lock also
// makes the name durable: the folder is fsynced (PostgreSQL fsyncs the
// file alone, which leaves the new name to the file system's journal).
Acquirer::Step Acquirer::finish_created() {
  record_.without_kernel_lock = created_.without_kernel_lock;
  if (options_.durable) {
    UniqueFd folder(loc_.open_folder());
    if (!folder.valid() || fsync_fd(folder.get()) != 0) {
      Failure f = system_failure("fsync lock folder");
      created_.reset();  // removes the file: ours, locked
      return fail(std::move(f));
    }
  }
  created_.keep();  // the lock owns the file and the table entry now
  return succeed(std::move(created_.fd), created_.st, std::move(created_.written));
}

Acquirer::Step Acquirer::examine_existing() {
  if (Failure f = examine(loc_, options_.judge, /*take_lock=*/true, &found_, waits_ ? waiter_->notifier() : nullptr,
                          /*creation_grace=*/contested_ < kContestedRetries))
    return fail(std::move(f));
  if (found_.file.vanished) return Step::kRetry;
  // A forked child acquiring a lock it inherited from its parent would wait
  // for its own share of it: it gives the share up, and looks again.
  if (found_.kernel == KernelEvidence::kHeld && FileLock::give_up_inherited_share(found_.file.st)) return Step::kAgain;
  return Step::kDecide;
}

// Waits on the file we announced ourselves on until it is ours or its
// name moves on.
Acquirer::Step Acquirer::wait_in_place() {
  InPlace outcome = InPlace::kMoved;
  Wake ended = Wake::kError;
  if (Failure f = wait_announced(loc_, options_.judge, *waiter_, announced_, &found_, &outcome, &ended))
    return fail(std::move(f));
  switch (outcome) {
    case InPlace::kWon: return Step::kDecide;
    case InPlace::kMoved: return Step::kAgain;
    case InPlace::kUnqueued:
      not_announced_ = {announced_.st.st_dev, announced_.st.st_ino};
      return Step::kAgain;
    case InPlace::kEnded: break;
  }
  switch (ended) {
    case Wake::kTimeout: {  // report the holder now on record, described in full
      ParsedRecord parsed;
      (void)read_record(announced_.fd.get(), &parsed);
      return held(judge(parsed, KernelEvidence::kHeld, options_.judge, self_identity()));
    }
    case Wake::kCancelled: return fail(pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled"));
    default: return fail(system_failure("wait for lock file"));
  }
}

Acquirer::Step Acquirer::decide() {
  const Inspection& insp = found_.inspection;
  // A creator between its open and its lock: look again in a moment.
  if (found_.in_creation) return Step::kPause;
  if (insp.reason == Reason::kHeldByThisProcess) {
    // Another thread's lock is waited for like another process's: its
    // release hands the file over, or removes it, and wakes us. The
    // acquiring thread itself would wait for ever: refused.
    if (waits_ && found_.held_by_other_thread) {
      found_.kernel = KernelEvidence::kHeld;
      return wait_or_refuse();
    }
    return fail(pidlock_failure(errc::already_held_by_this_process, "acquire",
                                found_.held_by_other_thread
                                    ? "another thread of this process holds it; a waiting acquire waits its turn"
                                    : "release the existing handle first; a second acquire never breaks or drops it"));
  }
  if (insp.verdict == Verdict::kStale) return take_over();
  return wait_or_refuse();
}

// The file is stale. We hold its kernel lock (or the file system has
// none): take it over in place rather than remove it, so that the path
// never goes empty, no third contender can slip its own file in between,
// and the contender that proved the holder dead is the one that holds the
// lock and learns (took_over) that recovery is due.
Acquirer::Step Acquirer::take_over() {
  const Inspection& insp = found_.inspection;
  ExistingFile& file = found_.file;
  if (file.st.st_nlink > 1 && found_.locked_by_us && sweep_orphaned_temps(loc_, file.st) > 0) {
    // An older version that crashed between link() and the removal of its
    // hidden temporary name left the lock file with a second name; that
    // name is gone now.
    if (sys().fstat(file.fd.get(), &file.st) != 0) return fail(system_failure("stat lock file"));
  }
  if (file.st.st_nlink > 1)
    return fail(pidlock_failure(errc::hard_linked_lock_file, "acquire",
                                "it has " + std::to_string(file.st.st_nlink) +
                                    " links; remove it by hand if it really is a stale lock"));
  if (!found_.locked_by_us && found_.kernel != KernelEvidence::kNone) {
    // Released to an announced waiter, which takes it over in a moment; we
    // could not, but may create our own file after that.
    if (insp.reason == Reason::kReleased && contested_ < kContestedRetries) return Step::kPause;
    // We could only open it read-only: we may not take it over.
    errno = found_.write_denied_errno();
    return fail(system_failure("take over stale lock file",
                               "the file is stale but cannot be opened for writing, which a safe take-over needs"));
  }
  // A file its holder released to us is a hand-off, not a take-over: no
  // recovery is due.
  const bool recovery_due = insp.reason != Reason::kReleased;
  if (found_.locked_by_us) {
    bool adopted = false;
    std::string written;
    if (Failure f = adopt_stale(loc_, options_, record_, file, &adopted, &written)) return fail(std::move(f));
    if (adopted) {
      if (recovery_due) previous_ = insp;
      // A holder announces no waiter (tools tell a waiter handed the lock
      // from a process that inherited the holder's by that alone).
      if (found_.announced && sys().withdraw_waiter(file.fd.get()) != 0) {
        PIDLOCK_LOG(debug) << "lock file \"" << loc_.path << "\": could not withdraw the waiter's announcement: "
                           << std::strerror(errno) << " (pidlock run may not name processes that inherit it)";
      }
      record_.without_kernel_lock = false;
      return succeed(std::move(file.fd), file.st, std::move(written));
    }
    // Not ours to rewrite (another user's or group's file): fall back to
    // removing it, which the kernel lock still makes safe, and creating a
    // fresh one that is ours.
  }
  bool removed = false;
  if (Failure f = remove_if_same(loc_, file.st, &removed)) return fail(std::move(f));
  if (removed) {
    if (recovery_due) previous_ = insp;
    PIDLOCK_LOG(debug) << "removed stale lock file \"" << loc_.path << "\": " << insp.detail;
  }
  return Step::kRetry;
}

// The file is held, or its state unknown (which counts as held).
Acquirer::Step Acquirer::wait_or_refuse() {
  // If the path no longer names the file we judged, it changed under us.
  NameLook look;
  if (Failure f = names_same_file(loc_, found_.file.st, &look)) return fail(std::move(f));
  if (!look.same) return Step::kRetry;
  if (!waits_) return refuse_or_pause();
  if (waiter_->settle_after_close(found_.kernel)) return Step::kRetry;
  const std::pair<dev_t, ino_t> id{found_.file.st.st_dev, found_.file.st.st_ino};
  // Not on a file whose record is still being written (creation rule):
  // if its creator dies before the write, the empty file's lock goes free
  // while announced waiters keep it open, and an empty file kept open is
  // held by the signs of life (Python's SoftFileLock) -- by its waiters.
  // Unannounced, we sleep until its creator closes it, and look again.
  const bool record_written = found_.inspection.holder.has_value();
  if (found_.kernel == KernelEvidence::kHeld && record_written && not_announced_ != id) {
    if (announce(loc_, found_, &announced_)) return Step::kAgain;
    not_announced_ = id;
  }
  return sleep_on_holder();
}

Acquirer::Step Acquirer::sleep_on_holder() {
  switch (waiter_->sleep(found_)) {
    case Wake::kEvent: return Step::kAgain;
    case Wake::kTimeout:  // report the holder we last saw, described in full
      // (only a kernel-lock holder was judged without the details; any
      // other verdict, from signs of life say, stands as it was given)
      if (found_.kernel != KernelEvidence::kHeld || !found_.inspection.holder) return held(found_.inspection);
      return held(judge(ParsedRecord{found_.inspection.holder, false, false, false, {}}, found_.kernel,
                        options_.judge, self_identity()));
    case Wake::kCancelled: return fail(pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled"));
    case Wake::kError: break;
  }
  return fail(system_failure("wait for lock file"));
}

// A non-waiting acquire fails -- unless the recorded holder is gone and
// yet the kernel lock is held: then a contender is taking the stale file
// over, or a process that inherited the descriptor lives on. Give the
// first a moment.
Acquirer::Step Acquirer::refuse_or_pause() {
  const Inspection& insp = found_.inspection;
  if (found_.kernel == KernelEvidence::kHeld && insp.holder && contested_ < kContestedRetries) {
    Inspection by_pid = judge(ParsedRecord{insp.holder, false, false, false, {}}, KernelEvidence::kNone,
                              options_.judge, self_identity());
    if (by_pid.verdict == Verdict::kStale) return Step::kPause;
  }
  return held(insp);
}

// `fd` (whose inode `st` describes, already in the process table) now
// holds the kernel lock and our record, as the bytes `written`.
Acquirer::Step Acquirer::succeed(UniqueFd fd, const struct stat& st, std::string written) {
  FileLockSetup setup;
  setup.path = loc_.at;
  setup.record = std::move(record_);  // the acquire is over
  setup.written = std::move(written);
  setup.previous = std::move(previous_);
  setup.owner_pid = self_.pid;
  setup.durable = options_.durable;
  setup.inheritable = options_.inheritable;
  result_ = std::make_shared<FileLock>(std::move(setup), std::move(fd), st);
  if (const auto& prev = result_->previous_holder()) {
    PIDLOCK_LOG(warning) << "acquired lock file \"" << loc_.path << "\" by taking over a stale lock of "
                         << (prev->holder ? describe_holder(*prev->holder) : std::string("an unknown holder"))
                         << " [" << to_string(prev->reason) << ": " << prev->detail << "]";
  } else {
    PIDLOCK_LOG(info) << "acquired lock file \"" << loc_.path << "\" (pid " << self_.pid << ")";
  }
  return Step::kDone;
}

Acquirer::Step Acquirer::fail(Failure failure) {
  failure_ = std::move(failure);
  return Step::kDone;
}

Acquirer::Step Acquirer::held(Inspection verdict) {
  held_ = std::move(verdict);
  return fail(pidlock_failure(errc::held, "acquire"));
}

}  // namespace pidlock::detail
