// One look at an existing lock file: open it, ask (or take) its kernel
// lock, read its record and judge it. Acquire, inspect, break and wait all
// decide from an Examined.
#ifndef PIDLOCK_FILE_EXAMINE_HPP
#define PIDLOCK_FILE_EXAMINE_HPP

#include <pidlock/inspection.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "core/judge.hpp"
#include "file/lock_location.hpp"

#include <cerrno>
#include <chrono>
#include <cstdint>

namespace pidlock::detail {

class ChangeNotifier;

// What a look at an existing lock file found.
struct Examined {
  ExistingFile file;
  KernelEvidence kernel = KernelEvidence::kNone;
  bool locked_by_us = false;
  bool held_by_other_thread = false;  // kHeldByThisProcess, acquired by another thread
  int no_write_errno = 0;  // why a writable open failed (EACCES, EROFS, EPERM), or 0
  bool in_creation = false;  // empty, unlocked and young: see kYoungFile
  // Won in the queue through a description that announced a waiter; the
  // announcement is withdrawn once our record is written, so that nothing
  // tells our description from a waiter's before then, nor after.
  bool announced = false;
  Inspection inspection;

  // Why a stale file we could not lock may not be taken over or removed.
  int write_denied_errno() const { return no_write_errno != 0 ? no_write_errno : EACCES; }
};

// The creation rule. A creator opens the file with O_CREAT|O_EXCL, then
// takes its kernel lock, then writes the record (create.hpp). So:
//  * a file whose kernel lock is held is held, whatever it holds: an empty
//    or partial record is one being written (its reads are retried while
//    torn, and the verdict rests on the lock alone);
//  * an empty file whose lock is free and that is younger than kYoungFile
//    may be a creator's between its open and its lock: it is "in creation"
//    (verdict unknown, which counts as held), and an acquire looks again
//    after kContestedPause, up to kContestedRetries times, before it judges
//    the file like any other (stale: taken over);
//  * an empty file that is older, or a partial one nobody locks, is a
//    crashed creator's leftover: stale.
// A creator that stalls past the pauses loses its file safely: it finds
// the lock taken, or (after its lock) the name gone, and looks again.
constexpr std::int64_t kYoungFile = 2;  // seconds of mtime, by the clock's seconds

// Opens, locks (when `take_lock`) or queries, reads and judges the file at
// `loc`. With take_lock, a stale verdict backed by kernel evidence leaves
// us holding the stale inode's kernel lock. With a notifier (a waiter's),
// the file is watched before its lock is asked about. With
// `creation_grace`, a file in creation is reported as such (and not
// locked); without it, it is judged as a crashed creator's.
Failure examine(const LockLocation& loc, const JudgeOptions& options, bool take_lock, Examined* out,
                ChangeNotifier* notifier = nullptr, bool creation_grace = true);

// The verdict on a path with no file at it.
Inspection free_inspection();

// When the file's content last changed, by the clock: its mtime (not its
// ctime, which a chmod or a rename moves too). judge() takes it as the
// write time of a record that holds none.
std::int64_t last_change(const struct stat& st);

// Retries of one attempt while a kernel lock is held by someone other than
// the recorded (dead) holder: usually a contender between taking a stale
// file's lock and removing it, or a holder the kernel has not finished
// closing (see Waiter::settle_after_close), which lasts microseconds.
// 40 x 250 us covers scheduling delays; a lock still held after that is
// held for real (a child that inherited the descriptor outlived the holder).
constexpr int kContestedRetries = 40;
constexpr std::chrono::microseconds kContestedPause{250};

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_EXAMINE_HPP
