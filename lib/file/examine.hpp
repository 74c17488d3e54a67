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

namespace pidlock::detail {

class ChangeNotifier;

// What a look at an existing lock file found.
struct Examined {
  ExistingFile file;
  KernelEvidence kernel = KernelEvidence::kNone;
  bool locked_by_us = false;
  bool held_by_other_thread = false;  // kHeldByThisProcess, acquired by another thread
  int no_write_errno = 0;  // why a writable open failed (EACCES, EROFS, EPERM), or 0
  Inspection inspection;

  // Why a stale file we could not lock may not be taken over or removed.
  int write_denied_errno() const { return no_write_errno != 0 ? no_write_errno : EACCES; }
};

// Opens, locks (when `take_lock`) or queries, reads and judges the file at
// `loc`. With take_lock, a stale verdict backed by kernel evidence leaves
// us holding the stale inode's kernel lock. With a notifier (a waiter's),
// the file is watched before its lock is asked about.
Failure examine(const LockLocation& loc, const JudgeOptions& options, bool take_lock, Examined* out,
                ChangeNotifier* notifier = nullptr);

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
