// The local acquire, as a small state machine that reads top to bottom.
//
//          +---------------------------- again ---------------------------+
//          v                                                              |
//   create: our file at the name --EEXIST--> examine: look at theirs --> decide:
//     | created                              | vanished: retry          |  stale: take over in place
//     v                                      v                          |         (or remove, retry)
//   done: a FileLock                       again                        |  held:  wait (announced: wait
//                                                                       |         in place) or refuse
//   wait in place (announced on their file) -- won --> decide           |
//                                           -- moved --> again          |
//
// Every step is a member function returning the next step; run() only
// dispatches. Attempts are counted in one place (retry()): a non-waiting
// acquire gives up after options.max_attempts creations lost to a file
// that then vanished, was removed as stale, or changed under us; a pause
// for a contender in the middle of a take-over, or of a creation (a file
// "in creation", examine.hpp), costs nothing (pause()).
// A waiting acquire is bounded by its deadline instead.
#ifndef PIDLOCK_FILE_ACQUIRER_HPP
#define PIDLOCK_FILE_ACQUIRER_HPP

#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "core/identity.hpp"
#include "file/create.hpp"
#include "file/examine.hpp"
#include "file/file_lock.hpp"
#include "file/handoff.hpp"
#include "file/lock_location.hpp"
#include "file/waiter.hpp"

#include <boost/filesystem/path.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace pidlock::detail {

class Acquirer {
 public:
  Acquirer(const boost::filesystem::path& path, const AcquireOptions& options);
  Acquirer(const Acquirer&) = delete;
  Acquirer& operator=(const Acquirer&) = delete;

  // The whole acquire: the lock, or null with *failure set (and *held, the
  // holder's verdict, when the failure is errc::held). Call once.
  std::shared_ptr<FileLock> run(Failure* failure, Inspection* held);

 private:
  enum class Step {
    kAgain,    // look at the path again: create, or wait in place if announced
    kRetry,    // kAgain, spending one of max_attempts (non-waiting acquires)
    kPause,    // kAgain after a short pause for a contender, spending nothing
    kExamine,  // our creation lost: look at the existing file
    kDecide,   // act on the verdict on the file examined (or won in place)
    kDone,     // result_ or failure_ is set
  };

  Failure start();
  Step advance(Step step);
  Step create();
  Step finish_created();
  Step examine_existing();
  Step wait_in_place();
  Step decide();
  Step take_over();
  Step wait_or_refuse();
  Step sleep_on_holder();
  Step refuse_or_pause();
  Step retry();
  Step pause();
  Step succeed(UniqueFd fd, const struct stat& st, std::string written);
  Step fail(Failure failure);
  Step held(Inspection verdict);

  const boost::filesystem::path& path_;
  const AcquireOptions& options_;
  const bool waits_;
  SelfIdentity self_;
  LockLocation loc_;
  HolderRecord record_;
  Created created_;
  Examined found_;
  std::optional<Inspection> previous_;  // the stale lock taken over
  int attempts_ = 0;
  int contested_ = 0;
  std::optional<Waiter> waiter_;
  Announced announced_;
  std::pair<dev_t, ino_t> not_announced_{0, 0};  // a file announce() refused
  Failure failure_;
  Inspection held_;
  std::shared_ptr<FileLock> result_;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_ACQUIRER_HPP
